//! The process's allocator policy, set once before any work: keep freed memory for reuse.
//!
//! Why: each network layer writes its output into a fresh buffer of up to hundreds of MiB and
//! drops its input. glibc serves blocks above its mmap threshold (128 KiB, adjusted upwards
//! as blocks are freed) with fresh `mmap`s and gives trimmed heap memory back to the kernel,
//! so each layer's output was faulted in and zeroed page by page again: `perf record` on
//! `seedling bench` (SD 1.5, 512²) put ~9 % of the time in page faults and `clear_page`. With
//! blocks up to 32 MiB kept on the heap (glibc's largest mmap threshold) and the heap not
//! trimmed, freed buffers are reused: `seedling bench --model <sd15 folder> --repeats 1` with
//! 2 threads, one run each way (the same policy set through glibc's MALLOC_*_ environment
//! variables): UNet step batch 2 10.9 → 9.6 s, VAE decode 20.1 → 16.4 s, peak RSS 5.1 → 5.2 GB. Only glibc has `mallopt`; elsewhere this
//! does nothing. A library user picks their own allocator policy; this is the binary's.

/// Applies the policy (glibc only).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Safety: `mallopt` only changes allocator parameters, called before other threads
        // start; a value glibc refuses leaves its default (return value 0), which is harmless.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_TOP_PAD, 256 << 20);
        }
    }
}
