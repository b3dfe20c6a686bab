//! AVX-512F (`Isa::Avx512`).

pub(crate) mod loops;
pub(crate) mod matmul;
