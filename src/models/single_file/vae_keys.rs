//! LDM VAE names (`ldm.modules.diffusionmodules.model.{Encoder,Decoder}`) → diffusers
//! `AutoencoderKL` names, as diffusers' `convert_ldm_vae_checkpoint`
//! (src/diffusers/loaders/single_file_utils.py) maps them. LDM numbers the decoder's `up`
//! levels bottom-up (`up.0` is the last applied), diffusers' `up_blocks` top-down; the
//! mid-block attention's q/k/v/proj_out are 1×1 convolutions in LDM and linears in diffusers.

/// The diffusers name of `rest` (a VAE key without `first_stage_model.`), whether its weight is
/// a 1×1 convolution standing for a linear, or `None` when the name is unknown. `levels` is the
/// number of decoder levels (`decoder.up.*`).
pub(crate) fn rename(rest: &str, levels: usize) -> Option<(String, bool)> {
    for same in ["quant_conv.", "post_quant_conv."] {
        if rest.starts_with(same) {
            return Some((rest.to_string(), false));
        }
    }
    let (coder, tail) = rest.split_once('.')?;
    if coder != "encoder" && coder != "decoder" {
        return None;
    }
    let (name, conv_as_linear) = part(tail, coder == "decoder", levels)?;
    Some((format!("{coder}.{name}"), conv_as_linear))
}

fn part(tail: &str, decoder: bool, levels: usize) -> Option<(String, bool)> {
    let plain = |s: String| Some((s, false));
    for (from, to) in [
        ("conv_in.", "conv_in."),
        ("conv_out.", "conv_out."),
        ("norm_out.", "conv_norm_out."),
        ("mid.block_1.", "mid_block.resnets.0."),
        ("mid.block_2.", "mid_block.resnets.1."),
    ] {
        if let Some(t) = tail.strip_prefix(from) {
            return plain(format!("{to}{}", resnet(t)));
        }
    }
    if let Some(t) = tail.strip_prefix("mid.attn_1.") {
        return attention(t);
    }
    let (level, block) = level(tail, if decoder { "up." } else { "down." })?;
    // diffusers' up_blocks[i] is LDM's up[levels - 1 - i].
    let (kind, index) = if decoder {
        ("up_blocks", levels.checked_sub(level + 1)?)
    } else {
        ("down_blocks", level)
    };
    let (sample, sampler) = if decoder {
        ("upsample", "upsamplers")
    } else {
        ("downsample", "downsamplers")
    };
    match block.split_once('.')? {
        ("block", t) => {
            let (j, t) = t.split_once('.')?;
            plain(format!("{kind}.{index}.resnets.{j}.{}", resnet(t)))
        }
        (s, t) if s == sample => plain(format!("{kind}.{index}.{sampler}.0.{t}")),
        _ => None,
    }
}

/// `<prefix>{i}.<tail>` → (i, tail).
fn level<'a>(tail: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let (i, rest) = tail.strip_prefix(prefix)?.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

fn resnet(tail: &str) -> String {
    match tail.strip_prefix("nin_shortcut.") {
        Some(t) => format!("conv_shortcut.{t}"),
        None => tail.to_string(),
    }
}

/// `mid.attn_1.{norm,q,k,v,proj_out}` → `mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}`.
fn attention(t: &str) -> Option<(String, bool)> {
    let (name, param) = t.split_once('.')?;
    let to = match name {
        "norm" => "group_norm",
        "q" => "to_q",
        "k" => "to_k",
        "v" => "to_v",
        "proj_out" => "to_out.0",
        _ => return None,
    };
    Some((
        format!("mid_block.attentions.0.{to}.{param}"),
        name != "norm" && param == "weight",
    ))
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn decoder_levels_are_reversed_and_attention_is_linear() {
        let r = |k: &str| rename(k, 4).unwrap();
        assert_eq!(
            r("decoder.up.3.block.0.conv1.weight"),
            ("decoder.up_blocks.0.resnets.0.conv1.weight".into(), false)
        );
        assert_eq!(
            r("decoder.up.0.block.2.nin_shortcut.bias"),
            (
                "decoder.up_blocks.3.resnets.2.conv_shortcut.bias".into(),
                false
            )
        );
        assert_eq!(
            r("decoder.up.1.upsample.conv.weight"),
            ("decoder.up_blocks.2.upsamplers.0.conv.weight".into(), false)
        );
        assert_eq!(
            r("encoder.down.0.downsample.conv.weight"),
            (
                "encoder.down_blocks.0.downsamplers.0.conv.weight".into(),
                false
            )
        );
        assert_eq!(
            r("decoder.mid.attn_1.q.weight"),
            ("decoder.mid_block.attentions.0.to_q.weight".into(), true)
        );
        assert_eq!(
            r("decoder.mid.attn_1.proj_out.bias"),
            ("decoder.mid_block.attentions.0.to_out.0.bias".into(), false)
        );
        assert_eq!(
            r("encoder.norm_out.weight"),
            ("encoder.conv_norm_out.weight".into(), false)
        );
        assert_eq!(rename("decoder.up.4.block.0.conv1.weight", 4), None);
        assert_eq!(rename("loss.logvar", 4), None);
    }
}
