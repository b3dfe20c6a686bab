//! diffusers / transformers `config.json` files → the configs our modules are built from.
//!
//! Every size comes from the model's own configs: block channels and types, head counts, linear
//! projection, cross-attention width, layers, groups, eps, VAE levels and scaling factor, text
//! encoder size and activation. Settings that change the architecture in ways these modules do
//! not implement are refused by name instead of being silently ignored.

use crate::{Error, Result};
use candle_transformers::models::stable_diffusion::vae;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

/// Reads and parses one JSON config, naming the file on failure.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Model(format!("{} is not a valid config: {e}", path.display())))
}

/// `model_index.json`: which pipeline the folder holds.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModelIndex {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    /// SDXL pipelines: an empty negative prompt gives all-zero negative conditioning.
    #[serde(default)]
    pub force_zeros_for_empty_prompt: Option<bool>,
}

/// An `int` or a per-block list, as diffusers allows for several UNet fields.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    fn expand(&self, n: usize, field: &str) -> Result<Vec<usize>> {
        match self {
            PerBlock::One(v) => Ok(vec![*v; n]),
            PerBlock::Each(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Each(v) => Err(Error::Model(format!(
                "unet config: {field} has {} entries for {n} blocks",
                v.len()
            ))),
        }
    }
}

fn one() -> PerBlock {
    PerBlock::One(1)
}
fn yes() -> bool {
    true
}
fn groups_32() -> usize {
    32
}
fn eps_1e5() -> f64 {
    1e-5
}
fn four() -> usize {
    4
}

/// The fields of diffusers' `UNet2DConditionModel` config that we read (defaults as in
/// diffusers 0.42's `__init__`), plus the ones we must refuse when set.
#[derive(Debug, Clone, Deserialize)]
pub struct UNetJson {
    #[serde(default = "four")]
    pub in_channels: usize,
    #[serde(default = "four")]
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    #[serde(default)]
    pub mid_block_type: Option<String>,
    pub layers_per_block: PerBlock,
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    pub cross_attention_dim: PerBlock,
    #[serde(default = "one")]
    pub transformer_layers_per_block: PerBlock,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub upcast_attention: bool,
    #[serde(default = "groups_32")]
    pub norm_num_groups: usize,
    #[serde(default = "eps_1e5")]
    pub norm_eps: f64,
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "one_usize")]
    pub downsample_padding: usize,
    #[serde(default = "one_f64")]
    pub mid_block_scale_factor: f64,
    #[serde(default)]
    pub sample_size: Option<usize>,
    // Architecture changes these modules do not implement (refused when set).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    #[serde(default)]
    pub time_embedding_type: Option<String>,
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
    #[serde(default)]
    pub act_fn: Option<String>,
    #[serde(default)]
    pub conv_in_kernel: Option<usize>,
    #[serde(default)]
    pub conv_out_kernel: Option<usize>,
    #[serde(default)]
    pub only_cross_attention: Option<serde_json::Value>,
    #[serde(default)]
    pub dual_cross_attention: Option<bool>,
    #[serde(default)]
    pub attention_type: Option<String>,
    #[serde(default)]
    pub resnet_out_scale_factor: Option<f64>,
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<serde_json::Value>,
}

fn one_usize() -> usize {
    1
}
fn one_f64() -> f64 {
    1.0
}

fn refuse(component: &str, field: &str, value: impl std::fmt::Display) -> Error {
    Error::Model(format!(
        "{component} config: {field} = {value} is not supported yet (this model's architecture \
         differs from Stable Diffusion 1.x/2.x)"
    ))
}

impl UNetJson {
    /// Checks the settings we cannot honour, so nothing is silently ignored.
    fn check_supported(&self) -> Result<()> {
        let c = "unet";
        match self.addition_embed_type.as_deref() {
            None => {}
            Some("text_time")
                if self.addition_time_embed_dim.is_some()
                    && self.projection_class_embeddings_input_dim.is_some() => {}
            Some(v) => return Err(refuse(c, "addition_embed_type", v)),
        }
        if let Some(v) = &self.class_embed_type {
            return Err(refuse(c, "class_embed_type", v));
        }
        if let Some(v) = self.time_cond_proj_dim {
            return Err(refuse(c, "time_cond_proj_dim", v));
        }
        if let Some(v) = self.encoder_hid_dim {
            return Err(refuse(c, "encoder_hid_dim", v));
        }
        if let Some(v) = self.time_embedding_dim {
            return Err(refuse(c, "time_embedding_dim", v));
        }
        let expect = |field: &str, v: &Option<String>, ok: &str| match v {
            Some(v) if v != ok => Err(refuse(c, field, v)),
            _ => Ok(()),
        };
        expect(
            "time_embedding_type",
            &self.time_embedding_type,
            "positional",
        )?;
        expect(
            "resnet_time_scale_shift",
            &self.resnet_time_scale_shift,
            "default",
        )?;
        expect("act_fn", &self.act_fn, "silu")?;
        expect(
            "mid_block_type",
            &self.mid_block_type,
            "UNetMidBlock2DCrossAttn",
        )?;
        expect("attention_type", &self.attention_type, "default")?;
        for (field, k) in [
            ("conv_in_kernel", self.conv_in_kernel),
            ("conv_out_kernel", self.conv_out_kernel),
        ] {
            if let Some(k) = k.filter(|k| *k != 3) {
                return Err(refuse(c, field, k));
            }
        }
        if let Some(v) = self.resnet_out_scale_factor.filter(|v| *v != 1.0) {
            return Err(refuse(c, "resnet_out_scale_factor", v));
        }
        match &self.reverse_transformer_layers_per_block {
            None | Some(serde_json::Value::Null) => {}
            Some(v) => return Err(refuse(c, "reverse_transformer_layers_per_block", v)),
        }
        if self.dual_cross_attention == Some(true) {
            return Err(refuse(c, "dual_cross_attention", true));
        }
        match &self.only_cross_attention {
            None | Some(serde_json::Value::Bool(false)) => {}
            Some(serde_json::Value::Array(a)) if a.iter().all(|v| v == false) => {}
            Some(v) => return Err(refuse(c, "only_cross_attention", v)),
        }
        Ok(())
    }

    /// The UNet's shape. diffusers' naming trap: `attention_head_dim` holds the number of heads
    /// when `num_attention_heads` is null (every SD 1.x/2.x config), and each level's head
    /// width is its channels divided by that.
    pub(crate) fn spec(&self) -> Result<UNetSpec> {
        self.check_supported()?;
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(Error::Model(format!(
                "unet config: {} block_out_channels, {} down_block_types, {} up_block_types; they must match",
                n,
                self.down_block_types.len(),
                self.up_block_types.len()
            )));
        }
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .expand(n, "attention heads")?;
        let layers = self.layers_per_block.expand(n, "layers_per_block")?;
        if layers.iter().any(|l| *l != layers[0]) {
            return Err(refuse(
                "unet",
                "layers_per_block (differing per block)",
                format!("{layers:?}"),
            ));
        }
        let cross = self.cross_attention_dim.expand(n, "cross_attention_dim")?;
        if cross.iter().any(|c| *c != cross[0]) {
            return Err(refuse(
                "unet",
                "cross_attention_dim (differing per block)",
                format!("{cross:?}"),
            ));
        }
        let transformer_layers = self
            .transformer_layers_per_block
            .expand(n, "transformer_layers_per_block")?;
        let mut cross_attention = Vec::with_capacity(n);
        #[allow(clippy::needless_range_loop)] // i indexes four parallel per-level lists
        for i in 0..n {
            // Up level n-1-i mirrors down level i, as in every SD UNet.
            let down = self.down_block_types[i].as_str();
            let up = self.up_block_types[n - 1 - i].as_str();
            cross_attention.push(match (down, up) {
                ("CrossAttnDownBlock2D", "CrossAttnUpBlock2D") => true,
                ("DownBlock2D", "UpBlock2D") => false,
                _ => {
                    return Err(Error::Model(format!(
                        "unet config: down block {i} '{down}' with up block {} '{up}' is not supported yet \
                         (supported: CrossAttnDownBlock2D/CrossAttnUpBlock2D and DownBlock2D/UpBlock2D, mirrored)",
                        n - 1 - i
                    )))
                }
            });
            if heads[i] == 0 || !self.block_out_channels[i].is_multiple_of(heads[i]) {
                return Err(Error::Model(format!(
                    "unet config: block {i} has {} channels, not divisible into {} attention heads",
                    self.block_out_channels[i], heads[i]
                )));
            }
        }
        if !self
            .block_out_channels
            .iter()
            .all(|c| *c > 0 && c.is_multiple_of(self.norm_num_groups))
        {
            return Err(Error::Model(format!(
                "unet config: block_out_channels {:?} are not divisible into {} norm groups",
                self.block_out_channels, self.norm_num_groups
            )));
        }
        Ok(UNetSpec {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            block_out_channels: self.block_out_channels.clone(),
            cross_attention,
            heads,
            up_transformer_layers: transformer_layers.iter().rev().copied().collect(),
            transformer_layers,
            layers_per_block: layers[0],
            cross_attention_dim: cross[0],
            linear_projection: self.use_linear_projection,
            norm_groups: self.norm_num_groups,
            norm_eps: self.norm_eps,
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift,
            center_input_sample: self.center_input_sample,
            downsample_padding: self.downsample_padding,
            mid_block_scale_factor: self.mid_block_scale_factor,
            addition: match (
                self.addition_embed_type.as_deref(),
                self.addition_time_embed_dim,
                self.projection_class_embeddings_input_dim,
            ) {
                (Some("text_time"), Some(time_embed_dim), Some(input_dim)) => Some(AdditionSpec {
                    time_embed_dim,
                    input_dim,
                }),
                _ => None,
            },
        })
    }
}

/// Everything that shapes the UNet, resolved from config.json (see `configs::UNetJson`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UNetSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    /// Per level: whether it has cross-attention transformers.
    pub cross_attention: Vec<bool>,
    /// Per level: attention heads.
    pub heads: Vec<usize>,
    /// Per level: transformer blocks per attention (down path and mid block).
    pub transformer_layers: Vec<usize>,
    /// Per up level (in up order): transformer blocks per attention.
    pub up_transformer_layers: Vec<usize>,
    pub layers_per_block: usize,
    pub cross_attention_dim: usize,
    pub linear_projection: bool,
    pub norm_groups: usize,
    pub norm_eps: f64,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
    pub center_input_sample: bool,
    pub downsample_padding: usize,
    pub mid_block_scale_factor: f64,
    /// SDXL's `addition_embed_type: "text_time"`; `None` for SD 1.x/2.x.
    pub addition: Option<AdditionSpec>,
}

/// SDXL's extra conditioning: the pooled text embedding and the size/crop "time ids", each id
/// embedded sinusoidally with `time_embed_dim` channels, through `add_embedding` (diffusers
/// `UNet2DConditionModel` with `addition_embed_type="text_time"`), added to the timestep
/// embedding. candle-transformers' UNet has no such path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdditionSpec {
    /// `addition_time_embed_dim`
    pub time_embed_dim: usize,
    /// `projection_class_embeddings_input_dim` = pooled width + ids × time_embed_dim
    pub input_dim: usize,
}

fn scaling_default() -> f64 {
    0.18215
}
fn three() -> usize {
    3
}

/// The fields of diffusers' `AutoencoderKL` config that we read (diffusers defaults).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeJson {
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    #[serde(default)]
    pub down_block_types: Vec<String>,
    #[serde(default)]
    pub up_block_types: Vec<String>,
    #[serde(default = "one_usize")]
    pub layers_per_block: usize,
    #[serde(default = "four")]
    pub latent_channels: usize,
    #[serde(default = "groups_32")]
    pub norm_num_groups: usize,
    #[serde(default = "scaling_default")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub shift_factor: Option<f64>,
    #[serde(default = "yes")]
    pub use_quant_conv: bool,
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
    #[serde(default = "yes")]
    pub force_upcast: bool,
    #[serde(default)]
    pub act_fn: Option<String>,
    #[serde(default)]
    pub latents_mean: Option<serde_json::Value>,
}

impl VaeJson {
    /// Pixels per latent along each side: one 2× upsampling per level but the last.
    pub fn scale_factor(&self) -> u32 {
        1 << (self.block_out_channels.len().saturating_sub(1))
    }

    pub(crate) fn to_candle(&self) -> Result<vae::AutoEncoderKLConfig> {
        let c = "vae";
        if self.block_out_channels.is_empty() {
            return Err(Error::Model(
                "vae config: block_out_channels is empty".into(),
            ));
        }
        if let Some(v) = self.shift_factor {
            return Err(refuse(c, "shift_factor", v));
        }
        if let Some(v) = &self.latents_mean {
            if !v.is_null() {
                return Err(refuse(c, "latents_mean", v));
            }
        }
        if !self.mid_block_add_attention {
            return Err(refuse(c, "mid_block_add_attention", false));
        }
        if let Some(a) = self.act_fn.as_ref().filter(|a| *a != "silu") {
            return Err(refuse(c, "act_fn", a));
        }
        for t in &self.down_block_types {
            if t != "DownEncoderBlock2D" {
                return Err(refuse(c, "down_block_types", t));
            }
        }
        for t in &self.up_block_types {
            if t != "UpDecoderBlock2D" {
                return Err(refuse(c, "up_block_types", t));
            }
        }
        Ok(vae::AutoEncoderKLConfig {
            block_out_channels: self.block_out_channels.clone(),
            layers_per_block: self.layers_per_block,
            latent_channels: self.latent_channels,
            norm_num_groups: self.norm_num_groups,
            use_quant_conv: self.use_quant_conv,
            use_post_quant_conv: self.use_post_quant_conv,
        })
    }
}

fn eps_default() -> f64 {
    1e-5
}
fn positions_default() -> usize {
    77
}

/// The fields of transformers' `CLIPTextConfig` that shape the network.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "positions_default")]
    pub max_position_embeddings: usize,
    pub hidden_act: String,
    #[serde(default = "eps_default")]
    pub layer_norm_eps: f64,
    /// Width of `text_projection` (CLIPTextModelWithProjection, SDXL's second encoder).
    #[serde(default)]
    pub projection_dim: Option<usize>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

/// A text encoder's `hidden_act` (`nets::clip` applies it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP, SD 1.x).
    QuickGelu,
    /// Exact `0.5 x (1 + erf(x / √2))` (transformers' "gelu"; OpenCLIP, SD 2.x).
    GeluErf,
    /// tanh approximation (transformers' "gelu_new" / "gelu_pytorch_tanh").
    GeluTanh,
}

impl Activation {
    pub(crate) fn parse(name: &str) -> Result<Self> {
        match name {
            "quick_gelu" => Ok(Activation::QuickGelu),
            "gelu" => Ok(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            other => Err(Error::Model(format!(
                "text_encoder config: hidden_act = {other} is not supported yet \
                 (supported: quick_gelu, gelu, gelu_new)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures")
            .join(rel)
    }

    #[test]
    fn tiny_sd_unet_maps_heads_and_block_types() {
        let u: UNetJson = read_json(&fixture("tiny-sd/unet/config.json")).unwrap();
        let c = u.spec().unwrap();
        assert_eq!(c.cross_attention, vec![false, true]);
        assert_eq!(c.heads, vec![8, 8]);
        assert_eq!(c.transformer_layers, vec![1, 1]);
        assert_eq!(c.cross_attention_dim, 32);
        assert_eq!(c.norm_groups, 8);
        assert!(!c.linear_projection);
    }

    #[test]
    fn tiny_sd2v_unet_has_per_block_heads_and_linear_projection() {
        let u: UNetJson = read_json(&fixture("tiny-sd2v/unet/config.json")).unwrap();
        let c = u.spec().unwrap();
        assert_eq!(c.heads, vec![2, 4]);
        assert_eq!(c.cross_attention, vec![true, true]);
        assert!(c.linear_projection);
    }

    #[test]
    fn sdxl_unet_has_the_text_time_addition() {
        let u: UNetJson = read_json(&fixture("tiny-sdxl/unet/config.json")).unwrap();
        let c = u.spec().unwrap();
        // add_embedding input: pooled text (projection_dim) + 6 size ids × addition_time_embed_dim.
        let a = c.addition.unwrap();
        assert_eq!(a.time_embed_dim, 8);
        assert_eq!(a.input_dim, 80);
        assert_eq!(c.transformer_layers, vec![1, 2]);
        // Another addition type is refused by name.
        let mut other = u.clone();
        other.addition_embed_type = Some("image".into());
        let err = other.spec().unwrap_err().to_string();
        assert!(err.contains("addition_embed_type"), "{err}");
    }

    #[test]
    fn vae_scale_factor_comes_from_levels() {
        let v: VaeJson = read_json(&fixture("tiny-sd/vae/config.json")).unwrap();
        assert_eq!(v.scale_factor(), 2);
        let v: VaeJson = read_json(&fixture("tiny-sd2v/vae/config.json")).unwrap();
        assert_eq!(v.scale_factor(), 8);
        assert_eq!(v.scaling_factor, 0.18215);
        v.to_candle().unwrap();
    }
}
