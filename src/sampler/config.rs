//! STUB — being written.
use super::SamplerKind;
#[derive(Debug, Clone, Default)]
pub struct SchedulerConfig;
#[derive(Debug, Clone)]
pub struct ResolvedConfig;
impl SchedulerConfig {
    pub fn resolve(&self, _kind: SamplerKind) -> crate::Result<ResolvedConfig> {
        unimplemented!()
    }
}
