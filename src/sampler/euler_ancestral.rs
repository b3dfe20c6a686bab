//! STUB — being written.
use super::config::ResolvedConfig;
use super::Sampler;
use crate::noise::BatchNoise;
use candle_core::Tensor;
pub struct EulerAncestral;
impl EulerAncestral {
    pub fn new(_c: &ResolvedConfig, _steps: usize) -> crate::Result<Self> {
        unimplemented!()
    }
}
impl Sampler for EulerAncestral {
    fn timesteps(&self) -> &[f64] {
        unimplemented!()
    }
    fn init_noise_sigma(&self) -> f64 {
        unimplemented!()
    }
    fn scale_model_input(&self, _s: &Tensor, _i: usize) -> candle_core::Result<Tensor> {
        unimplemented!()
    }
    fn step(
        &mut self,
        _o: &Tensor,
        _i: usize,
        _s: &Tensor,
        _n: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        unimplemented!()
    }
}
