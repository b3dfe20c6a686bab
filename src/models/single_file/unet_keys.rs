//! LDM UNet names (`openaimodel.UNetModel`) → diffusers `UNet2DConditionModel` names, as
//! diffusers' `convert_ldm_unet_checkpoint` (src/diffusers/loaders/single_file_utils.py) maps
//! them. `input_blocks` / `output_blocks` are flat lists: each level holds `layers_per_block`
//! resnets (each optionally followed by a transformer at sub-index 1), then one downsampler
//! (`input_blocks.i.0.op`); on the way up, `layers_per_block + 1` resnets and the upsampler
//! (`.conv`) at the last sub-index of the level's last block.

/// The diffusers name of `rest` (a key with `model.diffusion_model.` removed), or `None` when
/// it is not a UNet tensor this layout knows.
pub(crate) fn rename(rest: &str, layers_per_block: usize) -> Option<String> {
    let fixed = [
        ("time_embed.0.", "time_embedding.linear_1."),
        ("time_embed.2.", "time_embedding.linear_2."),
        // SDXL's size/pooled-text embedding (sgm `label_emb`).
        ("label_emb.0.0.", "add_embedding.linear_1."),
        ("label_emb.0.2.", "add_embedding.linear_2."),
        ("input_blocks.0.0.", "conv_in."),
        ("out.0.", "conv_norm_out."),
        ("out.2.", "conv_out."),
        ("middle_block.1.", "mid_block.attentions.0."),
    ];
    for (from, to) in fixed {
        if let Some(tail) = rest.strip_prefix(from) {
            return Some(format!("{to}{tail}"));
        }
    }
    if let Some(tail) = rest.strip_prefix("middle_block.0.") {
        return Some(format!("mid_block.resnets.0.{}", resnet(tail)?));
    }
    if let Some(tail) = rest.strip_prefix("middle_block.2.") {
        return Some(format!("mid_block.resnets.1.{}", resnet(tail)?));
    }
    let per_level = layers_per_block + 1;
    if let Some((i, j, tail)) = block("input_blocks.", rest) {
        // input_blocks.0 is conv_in (above); level l holds blocks 1 + l*per_level ...
        let (level, layer) = ((i.checked_sub(1)?) / per_level, (i - 1) % per_level);
        return match (j, layer == layers_per_block) {
            (0, true) => Some(format!(
                "down_blocks.{level}.downsamplers.0.conv.{}",
                tail.strip_prefix("op.")?
            )),
            (0, false) => Some(format!(
                "down_blocks.{level}.resnets.{layer}.{}",
                resnet(tail)?
            )),
            (1, false) => Some(format!("down_blocks.{level}.attentions.{layer}.{tail}")),
            _ => None,
        };
    }
    if let Some((i, j, tail)) = block("output_blocks.", rest) {
        let (level, layer) = (i / per_level, i % per_level);
        return match (j, tail.strip_prefix("conv.")) {
            (0, _) => Some(format!(
                "up_blocks.{level}.resnets.{layer}.{}",
                resnet(tail)?
            )),
            (1 | 2, Some(conv)) => Some(format!("up_blocks.{level}.upsamplers.0.conv.{conv}")),
            (1, None) => Some(format!("up_blocks.{level}.attentions.{layer}.{tail}")),
            _ => None,
        };
    }
    None
}

/// The LDM name of a diffusers transformer-block weight (`down_blocks.l.attentions.k.…`,
/// `mid_block.attentions.0.…`, `up_blocks.l.attentions.k.…`): `rename`'s inverse for the
/// layers kohya's SDXL LoRAs name in LDM form (`lora_unet_input_blocks_4_1_…`); `None` for
/// any other weight.
pub(crate) fn ldm_attention_name(name: &str, layers_per_block: usize) -> Option<String> {
    let per_level = layers_per_block + 1;
    if let Some(tail) = name.strip_prefix("mid_block.attentions.0.") {
        return Some(format!("middle_block.1.{tail}"));
    }
    let (down, rest) = match (
        name.strip_prefix("down_blocks."),
        name.strip_prefix("up_blocks."),
    ) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => return None,
    };
    let mut parts = rest.splitn(4, '.');
    let level: usize = parts.next()?.parse().ok()?;
    if parts.next()? != "attentions" {
        return None;
    }
    let layer: usize = parts.next()?.parse().ok()?;
    let tail = parts.next()?;
    Some(match down {
        true => format!("input_blocks.{}.1.{tail}", 1 + level * per_level + layer),
        false => format!("output_blocks.{}.1.{tail}", level * per_level + layer),
    })
}

/// `<prefix>{i}.{j}.<tail>` → (i, j, tail).
fn block<'a>(prefix: &str, rest: &'a str) -> Option<(usize, usize, &'a str)> {
    let mut parts = rest.strip_prefix(prefix)?.splitn(3, '.');
    let i = parts.next()?.parse().ok()?;
    let j = parts.next()?.parse().ok()?;
    Some((i, j, parts.next()?))
}

/// LDM `ResBlock` names → diffusers `ResnetBlock2D` names.
fn resnet(tail: &str) -> Option<String> {
    let map = [
        ("in_layers.0.", "norm1."),
        ("in_layers.2.", "conv1."),
        ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."),
        ("out_layers.3.", "conv2."),
        ("skip_connection.", "conv_shortcut."),
    ];
    map.iter()
        .find_map(|(from, to)| tail.strip_prefix(from).map(|t| format!("{to}{t}")))
}

#[cfg(test)]
mod tests {
    use super::{ldm_attention_name, rename};

    /// Every transformer weight of tiny-sdxl (2 levels with attention, 2 layers a block) goes
    /// to an LDM name that `rename` brings back; other weights have none.
    #[test]
    fn ldm_attention_names_invert_rename() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/tiny-sdxl/unet/diffusion_pytorch_model.safetensors");
        let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu).unwrap();
        let mut attention = 0;
        for name in tensors.keys() {
            match ldm_attention_name(name, 2) {
                Some(ldm) => {
                    attention += 1;
                    assert_eq!(rename(&ldm, 2).as_deref(), Some(name.as_str()), "{ldm}");
                }
                None => assert!(!name.contains(".attentions."), "{name}"),
            }
        }
        assert!(attention > 50, "{attention}");
        assert_eq!(
            ldm_attention_name("down_blocks.1.attentions.1.proj_in.weight", 2).unwrap(),
            "input_blocks.5.1.proj_in.weight"
        );
    }

    #[test]
    fn blocks_map_by_level_and_layer() {
        let r = |k: &str| rename(k, 2);
        assert_eq!(
            r("time_embed.2.bias").unwrap(),
            "time_embedding.linear_2.bias"
        );
        assert_eq!(r("input_blocks.0.0.weight").unwrap(), "conv_in.weight");
        assert_eq!(
            r("input_blocks.5.1.proj_in.weight").unwrap(),
            "down_blocks.1.attentions.1.proj_in.weight"
        );
        assert_eq!(
            r("input_blocks.3.0.op.weight").unwrap(),
            "down_blocks.0.downsamplers.0.conv.weight"
        );
        assert_eq!(
            r("input_blocks.4.0.skip_connection.bias").unwrap(),
            "down_blocks.1.resnets.0.conv_shortcut.bias"
        );
        assert_eq!(
            r("output_blocks.2.2.conv.weight").unwrap(),
            "up_blocks.0.upsamplers.0.conv.weight"
        );
        assert_eq!(
            r("output_blocks.5.1.conv.bias").unwrap(),
            "up_blocks.1.upsamplers.0.conv.bias"
        );
        assert_eq!(
            r("output_blocks.4.0.out_layers.3.weight").unwrap(),
            "up_blocks.1.resnets.1.conv2.weight"
        );
        assert_eq!(
            r("middle_block.2.emb_layers.1.weight").unwrap(),
            "mid_block.resnets.1.time_emb_proj.weight"
        );
        assert_eq!(r("input_blocks.3.1.norm.weight"), None);
        assert_eq!(r("middle_block.0.nonsense.weight"), None);
    }
}
