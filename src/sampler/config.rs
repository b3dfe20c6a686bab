//! STUB — being written.
use super::SamplerKind;
#[derive(Debug, Clone, Default)]
pub struct SchedulerConfig {
    pub class_name: Option<String>,
}
#[derive(Debug, Clone)]
pub struct ResolvedConfig;
impl SchedulerConfig {
    pub fn from_file(p: &std::path::Path) -> crate::Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        Ok(Self {
            class_name: v["_class_name"].as_str().map(String::from),
        })
    }
    pub fn num_train_timesteps(&self) -> usize {
        1000
    }
    pub fn resolve(&self, _kind: SamplerKind) -> crate::Result<ResolvedConfig> {
        unimplemented!()
    }
}
