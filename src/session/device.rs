//! Which device renders: `cpu`, `cuda` or `cuda:N`, parsed and opened here so front ends name a
//! device by text and never hold a tensor type.

use crate::{Error, ErrorKind, Message, Result, Setting};
use candle_core::Device;
use std::fmt;
use std::str::FromStr;

/// A device by name. Opening it (`open`) is where a CUDA device that is missing or not compiled
/// in is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// A CUDA device by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// A CUDA device in a build without CUDA is refused here, with the fix, so a front end that
/// parses the device first refuses it before any other work.
impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let ordinal = match spec {
            "cpu" => return Ok(DeviceSpec::Cpu),
            "cuda" => 0,
            s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => n,
                _ => {
                    return Err(Error::Invalid(format!(
                        "unknown device '{spec}'; use cpu, cuda or cuda:N"
                    )))
                }
            },
        };
        if !cfg!(feature = "cuda") {
            let message = Message::text(
                "this seedling was built without CUDA; rebuild it with `cargo build --release \
                 --features cuda` (needs the CUDA toolkit), or use ",
            )
            .set(Setting::Device, "cpu");
            return Err(Error::hint(ErrorKind::BadInput, message));
        }
        Ok(DeviceSpec::Cuda(ordinal))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// The candle device, with the fix named when CUDA is not compiled in or not usable.
    pub fn open(self) -> Result<Device> {
        let ordinal = match self {
            DeviceSpec::Cpu => return Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => n,
        };
        // Without the `cuda` feature candle refuses too, in its own words.
        Device::new_cuda(ordinal).map_err(|e| {
            let message = Message::text(format!(
                "cannot use CUDA device {ordinal}: {e}\n\
                 check that `nvidia-smi` lists the GPU and the driver supports CUDA 13, or use "
            ))
            .set(Setting::Device, "cpu");
            Error::hint(ErrorKind::Model, message)
        })
    }
}

/// How provenance names a device. A `flash-attn` build says so of its CUDA devices: its f16/bf16
/// attention runs another kernel (`seedling_kernels::flash_attn`), so its images differ slightly from a
/// plain `cuda` build's, and a replay that does not match should show why.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        for (text, spec) in [
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            match text.parse::<DeviceSpec>() {
                Ok(parsed) => assert_eq!(parsed, spec),
                // A build without CUDA refuses it here, with the fix.
                Err(e) if !cfg!(feature = "cuda") => {
                    assert!(e.to_string().contains("--features cuda"), "{e}")
                }
                Err(e) => panic!("{text}: {e}"),
            }
        }
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        let e = "gpu".parse::<DeviceSpec>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown device 'gpu'; use cpu, cuda or cuda:N"
        );
        assert!(matches!(
            "cuda:x".parse::<DeviceSpec>(),
            Err(Error::Invalid(_))
        ));
    }
}
