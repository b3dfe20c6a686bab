//! STUB — being written (torch-cpu).
use super::NoiseSource;
pub struct TorchCpuNoise;
impl TorchCpuNoise {
    pub fn new(_seed: u64) -> Self {
        unimplemented!()
    }
}
impl NoiseSource for TorchCpuNoise {
    fn randn(&mut self, _n: usize) -> Vec<f32> {
        unimplemented!()
    }
}
