//! STUB — being written.
use crate::{Provenance, Recipe, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub recipe: Recipe,
    pub provenance: Provenance,
}
pub fn encode_png(_p: &RgbImage, _m: &ImageMeta) -> Result<Vec<u8>> {
    unimplemented!()
}
pub fn read_recipe(_p: &Path) -> Result<(ImageMeta, RgbImage)> {
    unimplemented!()
}
