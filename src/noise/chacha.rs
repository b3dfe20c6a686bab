//! STUB — being written (chacha-v1).
use super::NoiseSource;
pub struct ChaChaNoise;
impl ChaChaNoise {
    pub fn new(_seed: u64) -> Self {
        unimplemented!()
    }
}
impl NoiseSource for ChaChaNoise {
    fn randn(&mut self, _n: usize) -> Vec<f32> {
        unimplemented!()
    }
}
