//! Host-side noise: every random number an image depends on comes from a `NoiseSource`, drawn on
//! the CPU in f32 by code in this module, so an image never depends on the device, the batch size
//! or a dependency's RNG (DESIGN.md, "Randomness").
//!
//! One `NoiseSource` per image. The pipeline takes the initial latent from it, then hands it to
//! the sampler, which takes every later draw (ancestral steps, DDIM with eta > 0) from the same
//! stream, in order.

mod chacha;
mod philox;
mod torch_cpu;
mod variation;

pub(crate) use chacha::ChaChaNoise;
pub(crate) use philox::PhiloxNoise;
pub(crate) use torch_cpu::TorchCpuNoise;
pub(crate) use variation::VariationNoise;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A seeded stream of standard normal f32 values.
///
/// One call to `randn` is one draw of `n` values, the analogue of one `torch.randn(shape)` call:
/// for `torch-cpu` the call boundaries matter (torch's algorithm depends on `n`), so a sampler
/// draws once per noise tensor, never element by element.
pub trait NoiseSource {
    /// The next `n` standard normal values, in row-major order of the tensor they fill.
    fn randn(&mut self, n: usize) -> Vec<f32>;
}

/// Which noise algorithm a recipe uses. Recorded in the recipe as `rng`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum RngKind {
    /// ChaCha20 keyed by the full 64-bit seed; spec `docs/NOISE_SPEC.md`, version `chacha-v1`.
    #[default]
    #[serde(rename = "chacha")]
    Chacha,
    /// Bit-compatible with `torch.Generator("cpu").manual_seed(seed)` + `torch.randn` (f32),
    /// so a seed means what it means in diffusers and ComfyUI. Uses the low 32 bits of the seed.
    #[serde(rename = "torch-cpu")]
    TorchCpu,
    /// torch's CUDA generator (`torch.Generator("cuda").manual_seed(seed)` + `torch.randn`) as
    /// AUTOMATIC1111's "NV" source reproduces it on the host: Philox4x32-10, one counter
    /// offset per draw. All 64 bits of the seed count.
    #[serde(rename = "philox")]
    Philox,
}

impl RngKind {
    pub const ALL: [RngKind; 3] = [RngKind::Chacha, RngKind::TorchCpu, RngKind::Philox];

    pub fn name(self) -> &'static str {
        match self {
            RngKind::Chacha => "chacha",
            RngKind::TorchCpu => "torch-cpu",
            RngKind::Philox => "philox",
        }
    }

    /// A fresh stream for one image.
    pub(crate) fn source(self, seed: u64) -> Box<dyn NoiseSource> {
        match self {
            RngKind::Chacha => Box::new(ChaChaNoise::new(seed)),
            RngKind::TorchCpu => Box::new(TorchCpuNoise::new(seed)),
            RngKind::Philox => Box::new(PhiloxNoise::new(seed)),
        }
    }
}

impl fmt::Display for RngKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RngKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        RngKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown rng '{s}'; use one of: {}",
                    RngKind::ALL.map(|k| k.name()).join(", ")
                ))
            })
    }
}

/// The streams of one execution batch, one per image: row `i` of every draw comes from stream
/// `i` alone, so an image is the same whatever batch it runs in (DESIGN.md: image i of a batch
/// uses seed + i with its own NoiseSource).
pub struct BatchNoise {
    sources: Vec<Box<dyn NoiseSource>>,
}

impl BatchNoise {
    pub fn new(sources: Vec<Box<dyn NoiseSource>>) -> Self {
        Self { sources }
    }

    /// A batch of one image.
    pub fn single(kind: RngKind, seed: u64) -> Self {
        Self::new(vec![kind.source(seed)])
    }

    /// The stream of one image: `seed`, or `seed` mixed with a variation seed.
    pub(crate) fn image_source(
        kind: RngKind,
        seed: u64,
        variation: Option<(u64, f64)>,
    ) -> Box<dyn NoiseSource> {
        match variation {
            Some((vseed, strength)) if strength > 0.0 => Box::new(VariationNoise::new(
                kind.source(seed),
                kind.source(vseed),
                strength,
            )),
            _ => kind.source(seed),
        }
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// One draw for a tensor of `shape`, whose first dimension is the batch: each stream makes
    /// one draw of `numel / batch` values, as `torch.randn((1, ...))` per generator would.
    pub(crate) fn draw(&mut self, shape: &[usize]) -> Vec<f32> {
        let batch = shape.first().copied().unwrap_or(1);
        assert_eq!(
            batch,
            self.sources.len(),
            "noise batch does not match the tensor batch"
        );
        let per_image: usize = shape[1..].iter().product();
        let mut out = Vec::with_capacity(batch * per_image);
        for source in &mut self.sources {
            out.extend(source.randn(per_image));
        }
        out
    }

    /// `draw` as a tensor in f32 on `device` (noise is always made on the host).
    pub(crate) fn draw_tensor(
        &mut self,
        shape: &[usize],
        device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_vec(self.draw(shape), shape, &candle_core::Device::Cpu)?
            .to_device(device)
    }
}
