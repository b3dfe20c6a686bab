//! `--device` → a candle device, with the fix named when CUDA is not compiled in.

use anyhow::{anyhow, bail, Result};
use candle_core::Device;

pub fn parse(spec: &str) -> Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("unknown device '{spec}'; use cpu, cuda or cuda:N"),
        },
    };
    if !cfg!(feature = "cuda") {
        bail!(
            "this seedling was built without CUDA; rebuild it with `cargo build --release --features cuda` \
             (needs the CUDA toolkit), or use --device cpu"
        );
    }
    Device::new_cuda(ordinal).map_err(|e| {
        anyhow!(
            "cannot use CUDA device {ordinal}: {e}\n\
             check that `nvidia-smi` lists the GPU and the driver supports CUDA 13, or use --device cpu"
        )
    })
}

/// How provenance names a device. A `flash-attn` build says so of its CUDA devices: its f16/bf16
/// attention runs another kernel (`seedling_kernels::flash_attn`), so its images differ slightly
/// from a plain `cuda` build's, and a replay that does not match should show why.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } if cfg!(feature = "flash-attn") => {
            format!("cuda:{gpu_id} (flash-attn)")
        }
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
