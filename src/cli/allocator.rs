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
//! variables): UNet step batch 2 10.9 → 9.6 s, VAE decode 20.1 → 16.4 s, peak RSS 5.1 → 5.2 GB.
//!
//! Blocks above 32 MiB (a GEGLU projection's output at 64×64 latents is 84 MB, the VAE's
//! largest activations 134 MB at 512²) still came from fresh `mmap`s, faulted in again on every
//! use, so `mmap` is now off altogether (`M_MMAP_MAX` 0: every block from the heap, which
//! glibc grows with `brk`; a thread arena that cannot fit a block retries in the main one).
//! Measured on 2 Zen 4 cores, `perf stat -e page-faults seedling bench --model <sd15 folder>
//! --repeats 2 --steps 1`, the policy set through `GLIBC_TUNABLES=glibc.malloc.mmap_max=0` on
//! the same binary, two interleaved runs each: 3.33 M → 1.30 M page faults (the rest is mostly
//! loading the weights); VAE decode medians 8.51, 8.25 → 6.45, 7.94 s, UNet batch 2 9.88, 8.01
//! → 7.92, 8.93 s (this VM's noise); peak RSS 5.1 GB both ways. `bench --vae-only` peak
//! 886 → 986 MB (larger holes in the heap); `seedling generate` at 1024×1024 (1 step,
//! `/usr/bin/time -v`): peak 7.25 GB both ways, faults 4.41 M → 1.87 M, 157 → 146 s.
//!
//! Only glibc has `mallopt`; elsewhere this does nothing. A library user picks their own
//! allocator policy; this is the binary's.

/// Applies the policy (glibc only).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Safety: `mallopt` only changes allocator parameters, called before other threads
        // start; a value glibc refuses leaves its default (return value 0), which is harmless.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_TOP_PAD, 256 << 20);
        }
    }
}
