//! AVX2 with FMA (`Isa::Avx2`, and on AVX-512 CPUs where a product's panels take its tile).

pub(crate) mod loops;
pub(crate) mod matmul;
