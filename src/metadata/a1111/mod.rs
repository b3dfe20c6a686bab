//! AUTOMATIC1111's `parameters` text ("infotext"), written and read side by side: `write`
//! makes it for every seedling image, so that A1111's PNG Info tab, Civitai and the many tools
//! that read that layout show what made it; `read` maps it back into a recipe, whoever wrote
//! it (A1111, Forge, seedling itself, or stable-diffusion.cpp, whose dialect `sdcpp` maps).
//! Both directions take A1111's names (keys, samplers, schedule types, noise sources) from one
//! table, `names`, and Python's whitespace rules from `python`.

mod names;
mod python;
pub mod read;
mod sdcpp;
mod write;

pub use read::parse;
pub use write::format_parameters;

/// Keyword of AUTOMATIC1111's generation-parameters chunk.
pub const PARAMETERS_KEYWORD: &str = "parameters";
