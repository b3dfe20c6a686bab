//! x86-64: AVX2 with FMA, and AVX-512. Each folder holds that instruction set's matrix
//! micro-kernel (intrinsics) and its builds of the portable loops.

pub(crate) mod avx2;
pub(crate) mod avx512;
