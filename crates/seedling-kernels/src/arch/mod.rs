//! The code of one instruction set each, in the layout of memchr's `src/arch/`: a folder per
//! architecture, a folder per instruction set in it. Every kernel asks `Isa::get` which one to
//! run; the portable code (the baseline, and the loops the per-ISA folders compile again with
//! wider vectors) stays with its kernel.

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;
