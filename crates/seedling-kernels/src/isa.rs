//! Which instruction set the kernels run on: the CPU's, detected once, and the one place every
//! kernel asks (`Isa::get`) before it picks its code path (`arch` holds the paths).
//!
//! The levels are cumulative: `Avx512` is only reported where AVX2 and FMA are there too, so a
//! kernel may run any path at or below the level it is given (the product runs AVX2's
//! micro-kernel on AVX-512 CPUs for panels only its 16-column tile divides). Each kernel's paths
//! give the same values on every level that has a micro-kernel (see `matmul::tiles`); the
//! baseline's products are the gemm crate's, summed in another order.
//!
//! In this crate's tests the level can be lowered for one test's closure (`each`), so that the
//! AVX2 paths are tested on AVX-512 CPUs too and the baseline everywhere.

use std::sync::OnceLock;

/// An instruction set the kernels have code for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64, or any other architecture): the portable loops,
    /// and the products on the gemm crate.
    Baseline,
    /// x86-64 with AVX2 and FMA (AMD's Zen 1–3, Intel's cores from Haswell on).
    Avx2,
    /// x86-64 with AVX-512F, AVX2 and FMA (AMD's Zen 4 on, Intel's server cores).
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The level the kernels run at: this CPU's best (`detected`), or in this crate's tests the
    /// one the running test asked for (`each`).
    #[inline]
    pub fn get() -> Isa {
        #[cfg(test)]
        if let Some(isa) = FORCED.with(std::cell::Cell::get) {
            return isa;
        }
        Isa::detected()
    }

    /// This CPU's best level, detected on first use.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// The levels this CPU can run, lowest first.
    pub fn available() -> impl Iterator<Item = Isa> {
        let best = Isa::detected();
        Isa::ALL.into_iter().filter(move |&isa| isa <= best)
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    if avx2 && is_x86_feature_detected!("avx512f") {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Baseline
}

#[cfg(test)]
thread_local! {
    /// The level `each` set for the threads of its pool.
    static FORCED: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Runs `test` once for every level this CPU has, lowest first, each time on a thread pool of
/// its own whose threads all dispatch at that level (the kernels' tasks run on the pool the
/// caller is in, so the whole computation sees it).
#[cfg(test)]
pub(crate) fn each(test: impl Fn(Isa) + Sync) {
    for isa in Isa::available() {
        let pool = rayon::ThreadPoolBuilder::new()
            .start_handler(move |_| FORCED.with(|forced| forced.set(Some(isa))))
            .build()
            .expect("a thread pool for one instruction set");
        eprintln!("at {isa:?}");
        pool.install(|| test(isa));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_levels_are_cumulative_and_each_forces_its_own() {
        let all: Vec<Isa> = Isa::available().collect();
        assert_eq!(all[0], Isa::Baseline);
        assert_eq!(all.last(), Some(&Isa::detected()));
        let seen = std::sync::Mutex::new(Vec::new());
        each(|isa| {
            assert_eq!(Isa::get(), isa);
            // The pool's other threads too.
            let levels: Vec<Isa> = rayon::broadcast(|_| Isa::get());
            assert!(levels.iter().all(|&l| l == isa), "{levels:?}");
            seen.lock().unwrap().push(isa);
        });
        assert_eq!(*seen.lock().unwrap(), all);
        assert_eq!(Isa::get(), Isa::detected(), "outside `each`");
    }
}
