//! Peak resident memory of this process, per stage: Linux's `VmHWM` (the high-water mark of
//! the resident set), which writing "5" to `/proc/self/clear_refs` resets to the current
//! resident size (proc(5), since Linux 4.0). Elsewhere there is no figure (`None`), never a
//! made-up one.

/// Starts a new peak: from now on `peak_bytes` reports the largest resident set since this
/// call. Returns whether the platform allowed the reset.
pub(crate) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident set size in bytes since the process started or `reset_peak`.
pub(crate) fn peak_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// The resident set size in bytes now: with `peak_bytes` after a `reset_peak`, what a stage
/// adds on top of the memory already held (loaded weights) when it starts.
pub(crate) fn current_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&status, field)
}

fn parse_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kib_fields_of_proc_status() {
        let status =
            "Name:\tseedling\nVmPeak:\t  123456 kB\nVmHWM:\t    4096 kB\nVmRSS:\t 2048 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(4096));
        assert_eq!(parse_kib(status, "VmSwap:"), None);
        assert_eq!(parse_kib("VmHWM:\tlots\n", "VmHWM:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_allocation_raises_the_peak_and_a_reset_lowers_it() {
        assert!(reset_peak());
        let before = peak_bytes().unwrap();
        let big = vec![1u8; 256 << 20];
        std::hint::black_box(&big);
        let during = peak_bytes().unwrap();
        assert!(during >= before + (200 << 20), "{before} -> {during}");
        drop(big);
        assert!(reset_peak());
        assert!(peak_bytes().unwrap() < during);
    }
}
