//! LoRA files, read into one form whatever tool wrote them: for each layer a file changes, the
//! low-rank pair (`down`: r × in, `up`: out × r) and its `alpha`, so that the layer's weight at
//! strength `s` is `W + s · (alpha / r) · up @ down` (kohya sd-scripts `networks/lora.py`
//! `LoRAModule.forward`, `scale = alpha / lora_dim`; diffusers/PEFT `lora_alpha / r`).
//!
//! Two layouts are read:
//! * kohya sd-scripts (what A1111, ComfyUI and Civitai use): `lora_unet_<module>`,
//!   `lora_te_<module>` (SDXL: `lora_te1_`/`lora_te2_`), each with `.lora_down.weight`,
//!   `.lora_up.weight` and an optional `.alpha` scalar (absent: alpha = r). `<module>` is the
//!   layer's name with `.` written as `_`, so it is matched against the network's own names.
//! * diffusers/PEFT (`save_lora_weights`): `unet.<module>.lora_A.weight` (down) and
//!   `.lora_B.weight` (up), `text_encoder.` / `text_encoder_2.`, alpha and r in the
//!   `lora_adapter_metadata` header entry (`unet.lora_alpha`, `unet.r`; absent: alpha = r).
//!
//! LyCORIS variants (LoHa, LoKr, OFT, DoRA, LoCon's Tucker `lora_mid`, full `diff` layers) and
//! diffusers' old attention-processor layout are refused by name, never half-applied.

use super::single_file::unet_keys;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The network a LoRA layer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Network {
    Unet,
    /// The (first) text encoder: SD's only one, SDXL's CLIP-L.
    TextEncoder,
    /// SDXL's OpenCLIP bigG encoder.
    TextEncoder2,
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::Unet => "unet",
            Network::TextEncoder => "text_encoder",
            Network::TextEncoder2 => "text_encoder_2",
        }
    }
}

/// Each network's weight names and shapes, what [`resolve`] matches a LoRA's layers against.
pub type Targets = BTreeMap<Network, Vec<(String, Vec<usize>)>>;

/// Which tool's layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Kohya,
    Peft,
}

/// One layer a LoRA changes.
#[derive(Debug)]
pub struct LoraLayer {
    pub network: Network,
    /// The layer as the file names it, canonical: `.` and `_` both as `_`, without the CLIP
    /// `text_model` prefix (see [`canonical`]).
    pub module: String,
    /// r × in (× kh × kw for a convolution).
    pub down: Tensor,
    /// out × r (× 1 × 1 for a convolution).
    pub up: Tensor,
    pub alpha: f64,
}

impl LoraLayer {
    pub fn rank(&self) -> usize {
        self.down.dims()[0]
    }

    /// The change to the layer's weight at strength `s`, `s · alpha / r · up @ down`, in f32 and
    /// in the weight's shape (out × in, or out × in × kh × kw).
    pub fn delta(&self, strength: f64) -> Result<Tensor> {
        let (down, up) = (
            self.down.to_dtype(DType::F32)?,
            self.up.to_dtype(DType::F32)?,
        );
        let r = self.rank();
        let out = up.dims()[0];
        let rest: Vec<usize> = down.dims()[1..].to_vec();
        let product = up
            .reshape((out, r))?
            .matmul(&down.reshape((r, rest.iter().product::<usize>()))?)?;
        let mut shape = vec![out];
        shape.extend(rest);
        // The scale in f64, applied once: what the references do (they multiply the f32
        // product by a Python float).
        Ok(product
            .affine(strength * self.alpha / r as f64, 0.0)?
            .reshape(shape)?)
    }
}

/// A LoRA file read whole.
#[derive(Debug)]
pub struct LoraFile {
    pub path: PathBuf,
    pub layout: Layout,
    /// kohya's `ss_base_model_version` (`sd_v1`, `sd_v2`, `sdxl_base_v1-0`), when recorded.
    pub base_model: Option<String>,
    pub layers: Vec<LoraLayer>,
}

/// The layer name every layout is compared in: `.` → `_`, a trailing `.weight` and a leading
/// `text_model.` dropped (transformers 4 names CLIP's layers `text_model.encoder…`, 5 drops the
/// prefix, kohya keeps it), so `text_model.encoder.layers.0.mlp.fc1.weight`,
/// `encoder.layers.0.mlp.fc1` and `text_model_encoder_layers_0_mlp_fc1` are one name.
pub fn canonical(name: &str) -> String {
    let name = name.strip_suffix(".weight").unwrap_or(name);
    let flat = name.replace('.', "_");
    match flat.strip_prefix("text_model_") {
        Some(rest) => rest.to_string(),
        None => flat,
    }
}

/// Key parts of the LyCORIS variants and old layouts this reader does not apply, with their names.
const REFUSED: [(&str, &str); 8] = [
    (".hada_w", "LoHa (LyCORIS)"),
    (".lokr_w", "LoKr (LyCORIS)"),
    (".oft_", "OFT"),
    (".dora_scale", "DoRA"),
    (".lora_mid.", "LoCon with Tucker decomposition (lora_mid)"),
    (".w_norm", "a LyCORIS norm layer"),
    ("_lora.down.", "diffusers' old attention-processor LoRA"),
    (".lora.down.", "diffusers' old LoRA layout"),
];

/// What a key shows the file to be, when it is a layout this reader refuses.
fn refused(key: &str) -> Option<&'static str> {
    // LyCORIS's full differences end in `.diff` / `.diff_b`; `contains` would also catch an
    // SGM name such as `model.diffusion_model`.
    if key.ends_with(".diff") || key.ends_with(".diff_b") {
        return Some("a full weight difference (LyCORIS 'diff')");
    }
    REFUSED
        .iter()
        .find(|(part, _)| key.contains(part))
        .map(|(_, what)| *what)
}

/// What a file's tensor names show it to be: the one detection that [`read`] and the models
/// listing (`folder::describe`) share, so the listing calls a file what loading it does.
#[derive(Debug, Clone, PartialEq)]
pub enum Detected {
    /// A layout seedling applies.
    Plain(Layout),
    /// A layout seedling refuses: what it is, and a key that shows it.
    Refused { what: &'static str, key: String },
    /// No LoRA layers.
    NotALora,
}

impl Detected {
    /// Whether the refused layout is one of LyCORIS's (the listing's "lycoris").
    pub fn is_lycoris(&self) -> bool {
        matches!(self, Detected::Refused { what, .. } if what.contains("LyCORIS") || what.contains("lora_mid") || what.contains("'diff'"))
    }
}

/// Detects the layout from the tensor names, in the file's order: a refused layout's key
/// anywhere wins (a file mixing layouts cannot be applied in part), then kohya's
/// `lora_down`/`lora_up`, then PEFT's `lora_A`/`lora_B`.
pub fn detect<'a, I>(names: I) -> Detected
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    let names = names.into_iter();
    if let Some((key, what)) = names.clone().find_map(|k| refused(k).map(|w| (k, w))) {
        return Detected::Refused {
            what,
            key: key.to_string(),
        };
    }
    if names.clone().any(|k| k.ends_with(".lora_down.weight")) {
        Detected::Plain(Layout::Kohya)
    } else if names.clone().any(|k| k.ends_with(".lora_A.weight")) {
        Detected::Plain(Layout::Peft)
    } else {
        Detected::NotALora
    }
}

/// Reads the LoRA file at `path` onto `device` (its tensors as stored; [`LoraLayer::delta`]
/// computes in f32).
pub fn read(path: &Path, device: &Device) -> Result<LoraFile> {
    read_with_header(path, &super::safetensors_header::read_header(path)?, device)
}

/// [`read`], with the file's header read already (its metadata names the PEFT layout's alpha
/// and the base model).
pub fn read_with_header(
    path: &Path,
    header: &super::safetensors_header::Header,
    device: &Device,
) -> Result<LoraFile> {
    let bad = |why: String| Error::Invalid(format!("LoRA {}: {why}", path.display()));
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
        Error::Invalid(format!(
            "cannot read LoRA {} as safetensors: {e}",
            path.display()
        ))
    })?;
    let metadata = &header.metadata;
    let layout = match detect(header.tensors.iter().map(|t| t.name.as_str())) {
        Detected::Plain(layout) => layout,
        Detected::Refused { what, key } => {
            return Err(bad(format!(
                "it is {what} (key {key}), which seedling does not apply yet; use a plain LoRA \
                 (kohya lora_down/lora_up or diffusers lora_A/lora_B)"
            )))
        }
        Detected::NotALora => {
            return Err(bad(format!(
                "no LoRA layers in it (no .lora_down/.lora_up or .lora_A/.lora_B keys; first \
                 keys: {})",
                first_keys(&tensors)
            )))
        }
    };
    let layers = match layout {
        Layout::Kohya => kohya_layers(tensors).map_err(bad)?,
        Layout::Peft => peft_layers(tensors, metadata).map_err(bad)?,
    };
    Ok(LoraFile {
        path: path.to_path_buf(),
        layout,
        base_model: metadata.get("ss_base_model_version").cloned(),
        layers,
    })
}

fn first_keys(tensors: &HashMap<String, Tensor>) -> String {
    let mut keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys.truncate(3);
    keys.join(", ")
}

/// The network and module of a kohya key's stem (`lora_unet_down_blocks_0_…`).
fn kohya_module(stem: &str) -> Option<(Network, &str)> {
    // Longest prefixes first: `lora_te1_` must not be read as `lora_te_`.
    [
        ("lora_te1_", Network::TextEncoder),
        ("lora_te2_", Network::TextEncoder2),
        ("lora_te_", Network::TextEncoder),
        ("lora_unet_", Network::Unet),
    ]
    .into_iter()
    .find_map(|(prefix, net)| stem.strip_prefix(prefix).map(|m| (net, m)))
}

fn kohya_layers(
    mut tensors: HashMap<String, Tensor>,
) -> std::result::Result<Vec<LoraLayer>, String> {
    let mut stems: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".lora_down.weight").map(str::to_string))
        .collect();
    stems.sort();
    let mut layers = Vec::with_capacity(stems.len());
    for stem in stems {
        let (network, module) =
            kohya_module(&stem).ok_or_else(|| format!("{stem}: not a lora_unet_/lora_te_ key"))?;
        let down = tensors
            .remove(&format!("{stem}.lora_down.weight"))
            .expect("listed");
        let up = tensors
            .remove(&format!("{stem}.lora_up.weight"))
            .ok_or_else(|| format!("{stem} has lora_down but no lora_up"))?;
        let alpha = match tensors.remove(&format!("{stem}.alpha")) {
            Some(a) => scalar(&a).map_err(|e| format!("{stem}.alpha: {e}"))?,
            None => down.dims()[0] as f64,
        };
        layers.push(layer(network, canonical(module), down, up, alpha, &stem)?);
    }
    if let Some(left) = tensors.keys().min() {
        return Err(format!(
            "key {left} is not part of a LoRA layer (lora_down, lora_up, alpha)"
        ));
    }
    Ok(layers)
}

fn peft_layers(
    mut tensors: HashMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Vec<LoraLayer>, String> {
    let config: serde_json::Value = match metadata.get("lora_adapter_metadata") {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("its lora_adapter_metadata is not JSON ({e})"))?,
        None => serde_json::Value::Null,
    };
    let mut stems: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".lora_A.weight").map(str::to_string))
        .collect();
    stems.sort();
    let mut layers = Vec::with_capacity(stems.len());
    for stem in stems {
        let (network, module) = [
            ("text_encoder_2.", Network::TextEncoder2),
            ("text_encoder.", Network::TextEncoder),
            ("unet.", Network::Unet),
        ]
        .into_iter()
        .find_map(|(prefix, net)| stem.strip_prefix(prefix).map(|m| (net, m)))
        .ok_or_else(|| format!("{stem}: not a unet./text_encoder. key"))?;
        let down = tensors
            .remove(&format!("{stem}.lora_A.weight"))
            .expect("listed");
        let up = tensors
            .remove(&format!("{stem}.lora_B.weight"))
            .ok_or_else(|| format!("{stem} has lora_A but no lora_B"))?;
        let alpha = peft_alpha(&config, network, down.dims()[0])?;
        layers.push(layer(network, canonical(module), down, up, alpha, &stem)?);
    }
    if let Some(left) = tensors.keys().min() {
        return Err(format!(
            "key {left} is not part of a LoRA layer (lora_A, lora_B)"
        ));
    }
    Ok(layers)
}

/// PEFT's `lora_alpha` for `network` (its `r` is the tensors'); per-module patterns are refused
/// rather than guessed.
fn peft_alpha(
    config: &serde_json::Value,
    network: Network,
    rank: usize,
) -> std::result::Result<f64, String> {
    let key = |k: &str| config.get(format!("{}.{k}", network.name()));
    for pattern in ["alpha_pattern", "rank_pattern"] {
        if key(pattern)
            .and_then(|p| p.as_object())
            .is_some_and(|p| !p.is_empty())
        {
            return Err(format!(
                "its {}.{pattern} gives some layers their own alpha or rank, which seedling does \
                 not apply yet",
                network.name()
            ));
        }
    }
    Ok(key("lora_alpha")
        .and_then(|a| a.as_f64())
        .unwrap_or(rank as f64))
}

fn layer(
    network: Network,
    module: String,
    down: Tensor,
    up: Tensor,
    alpha: f64,
    stem: &str,
) -> std::result::Result<LoraLayer, String> {
    let (d, u) = (down.dims(), up.dims());
    let fits = d.len() >= 2
        && u.len() == d.len()
        && u[1] == d[0]
        && u[2..].iter().all(|&k| k == 1)
        && alpha.is_finite();
    if !fits {
        return Err(format!(
            "{stem}: lora_down {d:?} and lora_up {u:?} do not make a low-rank pair"
        ));
    }
    Ok(LoraLayer {
        network,
        module,
        down,
        up,
        alpha,
    })
}

fn scalar(t: &Tensor) -> std::result::Result<f64, String> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| e.to_string())
        .and_then(|v| match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(format!("expected one number, found {}", v.len())),
        })
}

/// Each layer of `lora` matched to the weight it changes, by name: `targets` are the weight names
/// of each network (as its safetensors file names them). A layer that matches no weight, or whose
/// shape does not fit it, is an error naming the file: a LoRA is never silently half-applied.
pub fn resolve<'a>(
    lora: &'a LoraFile,
    targets: &BTreeMap<Network, Vec<(String, Vec<usize>)>>,
) -> Result<Vec<(Network, String, &'a LoraLayer)>> {
    let layers = targets.get(&Network::Unet).map(|n| layers_per_block(n));
    let mut index: HashMap<(Network, String), (&str, &[usize])> = HashMap::new();
    for (net, names) in targets {
        for (n, shape) in names.iter().filter(|(n, _)| n.ends_with(".weight")) {
            let target = (n.as_str(), shape.as_slice());
            index.insert((*net, canonical(n)), target);
            // kohya names SDXL's UNet layers (and some SD 1.x trainers all UNet layers) by the
            // LDM model's modules, as A1111's Lora extension accepts them (network.py
            // `convert_diffusers_name_to_compvis` maps the other way).
            if *net != Network::Unet {
                continue;
            }
            if let Some(ldm) = layers.and_then(|l| unet_keys::ldm_attention_name(n, l)) {
                index.insert((*net, canonical(&ldm)), target);
            }
        }
    }
    let mut out = Vec::with_capacity(lora.layers.len());
    for l in &lora.layers {
        let Some((name, shape)) = index.get(&(l.network, l.module.clone())) else {
            return Err(Error::Invalid(format!(
                "LoRA {}: its layer {} ({}) matches no weight of this model's {}; it was made \
                 for another model family or architecture",
                lora.path.display(),
                l.module,
                l.network.name(),
                l.network.name()
            )));
        };
        let (out_dim, in_dims) = (l.up.dims()[0], &l.down.dims()[1..]);
        // A 1×1 conv LoRA fits a linear layer of the same size and the other way round (SD's
        // `proj_in`/`proj_out` are one or the other by `use_linear_projection`); the applier
        // reshapes the delta to the weight.
        let fits = shape.first() == Some(&out_dim)
            && shape[1..].iter().product::<usize>() == in_dims.iter().product::<usize>();
        if !fits {
            return Err(Error::Invalid(format!(
                "LoRA {}: its layer {} changes a {out_dim}×{in_dims:?} weight, but this model's \
                 {name} is {shape:?}; it was made for another model family or size",
                lora.path.display(),
                l.module,
            )));
        }
        out.push((l.network, name.to_string(), l));
    }
    Ok(out)
}

/// The resnets of a diffusers UNet's first down block, from its weight names: the
/// `layers_per_block` its LDM block numbering counts with.
fn layers_per_block(names: &[(String, Vec<usize>)]) -> usize {
    let mut layers: Vec<&str> = names
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("down_blocks.0.resnets.")?.split('.').next())
        .collect();
    layers.sort_unstable();
    layers.dedup();
    layers.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/wild")
            .join(rel)
    }

    fn names(path: &Path) -> Vec<(String, Vec<usize>)> {
        let t = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
        t.into_iter().map(|(k, v)| (k, v.dims().to_vec())).collect()
    }

    fn tiny_sd_targets() -> BTreeMap<Network, Vec<(String, Vec<usize>)>> {
        let sd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-sd");
        BTreeMap::from([
            (
                Network::Unet,
                names(&sd.join("unet/diffusion_pytorch_model.safetensors")),
            ),
            (
                Network::TextEncoder,
                names(&sd.join("text_encoder/model.safetensors")),
            ),
        ])
    }

    #[test]
    fn names_are_compared_in_one_form() {
        assert_eq!(
            canonical("text_model.encoder.layers.0.mlp.fc1.weight"),
            "encoder_layers_0_mlp_fc1"
        );
        assert_eq!(
            canonical("encoder.layers.0.mlp.fc1"),
            "encoder_layers_0_mlp_fc1"
        );
        assert_eq!(
            canonical("text_model_encoder_layers_0_mlp_fc1"),
            "encoder_layers_0_mlp_fc1"
        );
        assert_eq!(
            canonical("down_blocks.1.attentions.0.proj_in.weight"),
            "down_blocks_1_attentions_0_proj_in"
        );
    }

    /// The fixture's kohya file and diffusers' own re-save of it (README: they give bit-identical
    /// images) are the same layers with the same deltas, and every layer finds its weight in
    /// tiny-sd: 96 modules, 72 in the UNet and 24 in the text encoder.
    #[test]
    fn kohya_and_diffusers_files_are_the_same_lora() {
        let kohya = read(&wild("loras/tiny-sd1-lora.safetensors"), &Device::Cpu).unwrap();
        let peft = read(
            &wild("loras/tiny-sd1-lora-diffusers.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!((kohya.layout, peft.layout), (Layout::Kohya, Layout::Peft));
        assert_eq!(kohya.base_model.as_deref(), Some("sd_v1"));
        assert_eq!(kohya.layers.len(), 96);
        assert_eq!(peft.layers.len(), 96);
        let targets = tiny_sd_targets();
        let a = resolve(&kohya, &targets).unwrap();
        let b = resolve(&peft, &targets).unwrap();
        let count = |n| a.iter().filter(|(net, _, _)| *net == n).count();
        assert_eq!(
            (count(Network::Unet), count(Network::TextEncoder)),
            (72, 24)
        );
        let b: HashMap<&str, &LoraLayer> = b.iter().map(|(_, n, l)| (n.as_str(), *l)).collect();
        for (_, name, l) in &a {
            assert_eq!(l.alpha / l.rank() as f64, 0.5, "{name}");
            let (x, y) = (l.delta(0.8).unwrap(), b[name.as_str()].delta(0.8).unwrap());
            let diff = (x - y).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
    }

    /// The delta is `s · alpha/r · up @ down`, in the weight's shape (a 1×1 conv here).
    #[test]
    fn the_delta_is_the_scaled_low_rank_product() {
        let dev = Device::Cpu;
        let down = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev)
            .unwrap()
            .reshape((2, 2, 1, 1))
            .unwrap();
        let up = Tensor::new(&[[1f32, 0.], [0., 1.], [1., 1.]], &dev)
            .unwrap()
            .reshape((3, 2, 1, 1))
            .unwrap();
        let l = LoraLayer {
            network: Network::Unet,
            module: "x".into(),
            down,
            up,
            alpha: 1.0,
        };
        let d = l.delta(0.5).unwrap();
        assert_eq!(d.dims(), [3, 2, 1, 1]);
        // up @ down = [[1,2],[3,4],[4,6]]; × 0.5 × 1/2.
        let v: Vec<f32> = d.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, [0.25, 0.5, 0.75, 1.0, 1.0, 1.5]);
    }

    fn write(dir: &Path, name: &str, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join(name);
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn other_formats_and_foreign_layers_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let t = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
        let loha = write(
            dir.path(),
            "loha.safetensors",
            &[
                ("lora_unet_x.hada_w1_a", t(&[4, 4])),
                ("lora_unet_x.hada_w1_b", t(&[4, 4])),
            ],
        );
        let e = read(&loha, &Device::Cpu).unwrap_err().to_string();
        assert!(
            e.contains("LoHa (LyCORIS)") && e.contains("loha.safetensors"),
            "{e}"
        );

        let none = write(
            dir.path(),
            "model.safetensors",
            &[("conv.weight", t(&[4, 4]))],
        );
        let e = read(&none, &Device::Cpu).unwrap_err().to_string();
        assert!(
            e.contains("no LoRA layers in it") && e.contains("conv.weight"),
            "{e}"
        );

        // A layer of a model tiny-sd does not have (a third level, as SDXL's LDM names count).
        let other = write(
            dir.path(),
            "sdxl.safetensors",
            &[
                (
                    "lora_unet_input_blocks_7_1_proj_in.lora_down.weight",
                    t(&[4, 32]),
                ),
                (
                    "lora_unet_input_blocks_7_1_proj_in.lora_up.weight",
                    t(&[32, 4]),
                ),
            ],
        );
        let lora = read(&other, &Device::Cpu).unwrap();
        let e = resolve(&lora, &tiny_sd_targets()).unwrap_err().to_string();
        assert!(
            e.contains("sdxl.safetensors") && e.contains("matches no weight of this model's unet"),
            "{e}"
        );

        // The right name with the wrong width.
        let wide = write(
            dir.path(),
            "wide.safetensors",
            &[
                (
                    "lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight",
                    t(&[4, 640]),
                ),
                (
                    "lora_unet_down_blocks_1_attentions_0_proj_in.lora_up.weight",
                    t(&[640, 4]),
                ),
            ],
        );
        let lora = read(&wide, &Device::Cpu).unwrap();
        let e = resolve(&lora, &tiny_sd_targets()).unwrap_err().to_string();
        assert!(e.contains("another model family or size"), "{e}");
    }
}
