//! A `VarBuilder` over a single-file checkpoint that serves each tensor under its diffusers
//! name (`models::single_file::keys`), reshaped as the network expects, so the networks' own
//! code (and every existing image) stays as it is. The file stays memory-mapped and is read in
//! place: no converted copy is written or held.

use crate::models::single_file::keys::{KeyMap, Transform};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::path::Path;
use std::sync::Arc;

struct Renamed {
    file: MmapedSafetensors,
    map: Arc<KeyMap>,
}

impl Renamed {
    /// The tensor named `name`, as stored, then transformed; the dtype conversion comes last,
    /// as `MmapedSafetensors`' own backend does it (reshapes, slices and transposes are exact,
    /// so the values are the stored ones in either order).
    fn load(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let source = self
            .map
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.into() }.bt())?;
        let stored = self.file.load(&source.key, dev)?;
        let tensor = match source.transform {
            Transform::Copy => stored,
            Transform::ConvAsLinear => {
                let (out, inp) = (stored.dim(0)?, stored.dim(1)?);
                stored.reshape((out, inp))?
            }
            Transform::Chunk { index, of } => {
                let part = stored.dim(0)? / of;
                stored.narrow(0, index * part, part)?.contiguous()?
            }
            Transform::Transpose => stored.t()?.contiguous()?,
        };
        tensor.to_dtype(dtype)
    }
}

impl SimpleBackend for Renamed {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let tensor = self.load(name, dtype, dev)?;
        if tensor.shape() != &s {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: tensor.shape().clone(),
            }
            .bt())?
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// A `VarBuilder` reading the file at `path` under `map`'s names.
pub(crate) fn var_builder(
    path: &Path,
    map: Arc<KeyMap>,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let file = seedling_kernels::mmap::safetensors(path)?;
    let backend: Box<dyn SimpleBackend> = Box::new(Renamed { file, map });
    Ok(VarBuilder::from_backend(backend, dtype, device.clone()))
}
