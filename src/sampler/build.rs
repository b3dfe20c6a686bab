//! Building a sampler from a recipe's sampler and schedule and the model's scheduler config.

use super::config::SchedulerConfig;
use super::kind::{SamplerKind, ScheduleKind};
use super::protocol::Sampler;
use super::{ddim, dpmpp_2m, euler, euler_ancestral, lcm, pndm, unipc};
use crate::{ErrorKind, Message, Setting};

/// Builds the sampler `kind` for `steps` steps from the model's scheduler config, as
/// `<Class>.from_config(scheduler_config)` + `set_timesteps(steps)` would in diffusers.
/// `ScheduleKind::Karras` is diffusers' `use_karras_sigmas=True`; a config that already sets
/// it gets Karras sigmas with either schedule (the config is the model's default).
pub fn build(
    kind: SamplerKind,
    schedule: ScheduleKind,
    config: &SchedulerConfig,
    steps: usize,
    eta: f64,
) -> crate::Result<Box<dyn Sampler>> {
    let mut resolved = config.resolve(kind)?;
    if schedule == ScheduleKind::Karras {
        if !kind.has_sigmas() {
            let with_sigmas: Vec<&str> = SamplerKind::ALL
                .into_iter()
                .filter(|k| k.has_sigmas())
                .map(|k| k.name())
                .collect();
            let message = Message::text(format!(
                "the karras schedule needs a sampler with noise levels (sigmas); {kind} has \
                 none. Use "
            ))
            .set(Setting::field("schedule"), "default")
            .then(format!(", or one of: {}", with_sigmas.join(", ")));
            return Err(crate::Error::hint(ErrorKind::BadInput, message));
        }
        resolved.karras = true;
    }
    Ok(match kind {
        SamplerKind::Ddim => Box::new(ddim::Ddim::new(&resolved, steps, eta)?),
        SamplerKind::Euler => Box::new(euler::Euler::new(&resolved, steps)?),
        SamplerKind::EulerAncestral => {
            Box::new(euler_ancestral::EulerAncestral::new(&resolved, steps)?)
        }
        SamplerKind::DpmPp2m => Box::new(dpmpp_2m::DpmPp2m::new(&resolved, steps)?),
        SamplerKind::UniPc => Box::new(unipc::UniPc::new(&resolved, steps)?),
        SamplerKind::Pndm => Box::new(pndm::Pndm::new(&resolved, steps)?),
        SamplerKind::Lcm => Box::new(lcm::Lcm::new(&resolved, steps)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karras_only_for_samplers_with_sigmas() {
        let cfg = SchedulerConfig::from_json(r#"{"skip_prk_steps": true}"#).unwrap();
        for kind in SamplerKind::ALL {
            let built = build(kind, ScheduleKind::Karras, &cfg, 4, 0.0);
            if kind.has_sigmas() {
                let s = built.unwrap();
                // Karras spacing: the first sigma is sigma_max, the last before 0 sigma_min.
                let sigmas = s.sigmas().unwrap();
                assert_eq!(sigmas.len(), 5, "{kind}");
            } else {
                let err = built.err().unwrap().render(crate::message::as_flags);
                assert!(
                    err.contains(kind.name()) && err.contains("--schedule default"),
                    "{err}"
                );
                assert!(err.contains("euler, euler_a, dpmpp_2m, unipc"), "{err}");
            }
        }
    }

    #[test]
    fn karras_changes_the_schedule() {
        let cfg = SchedulerConfig::from_json("{}").unwrap();
        for kind in [SamplerKind::Euler, SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            let d = build(kind, ScheduleKind::Default, &cfg, 10, 0.0).unwrap();
            let k = build(kind, ScheduleKind::Karras, &cfg, 10, 0.0).unwrap();
            // Both start at the top of the training range (Karras: up to log-sigma
            // interpolation error) and differ in between.
            assert!((d.timesteps()[0] - k.timesteps()[0]).abs() < 1e-3, "{kind}");
            assert!(d.timesteps()[1..9] != k.timesteps()[1..9], "{kind}");
        }
    }
}
