//! Text encoder names → transformers `CLIPTextModel` names (without `text_model.`, which
//! `nets::clip` accepts either way). SD 1.x and SDXL's first encoder already are transformers
//! models; SD 2.x and SDXL's second are open_clip models, mapped as diffusers'
//! `convert_open_clip_checkpoint` (src/diffusers/loaders/single_file_utils.py) does.

use super::keys::{Rename, Transform};

/// A transformers CLIP key (`text_model.…`, or without it as older files write).
pub(crate) fn rename_hf(rest: &str) -> Rename {
    let rest = rest.strip_prefix("text_model.").unwrap_or(rest);
    if rest == "embeddings.position_ids" {
        // A constant arange buffer; transformers rebuilds it.
        return Rename::Unused;
    }
    Rename::to(rest, Transform::Copy)
}

/// An open_clip text tower key. `layers`: how many transformer blocks the text encoder has
/// (from the config, never from the file: SD 2.x conditions on the penultimate block, so its
/// files hold one block more than diffusers' encoder uses). `projection`: whether the encoder
/// has `text_projection` (SDXL's second; open_clip stores it as `x @ P`, i.e. [in, out], the
/// transpose of a linear's weight).
pub(crate) fn rename_open_clip(rest: &str, layers: usize, projection: bool) -> Rename {
    match rest {
        "token_embedding.weight" => {
            return Rename::to("embeddings.token_embedding.weight", Transform::Copy)
        }
        "positional_embedding" => {
            return Rename::to("embeddings.position_embedding.weight", Transform::Copy)
        }
        "text_projection" if projection => {
            return Rename::to("text_projection.weight", Transform::Transpose)
        }
        // SD 2.x uses the hidden states, not the projection; CLIP's logit scale is for
        // contrastive training.
        "text_projection" | "logit_scale" => return Rename::Unused,
        _ => {}
    }
    if let Some(param) = rest.strip_prefix("ln_final.") {
        return Rename::to(&format!("final_layer_norm.{param}"), Transform::Copy);
    }
    let Some((i, tail)) = rest
        .strip_prefix("transformer.resblocks.")
        .and_then(|r| r.split_once('.'))
    else {
        return Rename::Unknown;
    };
    let Ok(i) = i.parse::<usize>() else {
        return Rename::Unknown;
    };
    if i >= layers {
        return Rename::Unused;
    }
    block(tail, &format!("encoder.layers.{i}."))
}

/// One residual attention block: `in_proj_*` is q, k and v stacked along dim 0.
fn block(tail: &str, to: &str) -> Rename {
    if let Some(param) = tail.strip_prefix("attn.in_proj_") {
        return Rename::To(
            ["q_proj", "k_proj", "v_proj"]
                .iter()
                .enumerate()
                .map(|(index, p)| {
                    let name = format!("{to}self_attn.{p}.{param}");
                    (name, Transform::Chunk { index, of: 3 })
                })
                .collect(),
        );
    }
    let map = [
        ("ln_1.", "layer_norm1."),
        ("ln_2.", "layer_norm2."),
        ("attn.out_proj.", "self_attn.out_proj."),
        ("mlp.c_fc.", "mlp.fc1."),
        ("mlp.c_proj.", "mlp.fc2."),
    ];
    map.iter()
        .find_map(|(from, name)| {
            let param = tail.strip_prefix(from)?;
            Some(Rename::to(&format!("{to}{name}{param}"), Transform::Copy))
        })
        .unwrap_or(Rename::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_clip_splits_in_proj_and_drops_blocks_past_the_config() {
        let Rename::To(t) =
            rename_open_clip("transformer.resblocks.1.attn.in_proj_weight", 4, false)
        else {
            panic!()
        };
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].0, "encoder.layers.1.self_attn.k_proj.weight");
        assert_eq!(t[1].1, Transform::Chunk { index: 1, of: 3 });
        let unused = rename_open_clip("transformer.resblocks.4.ln_1.weight", 4, false);
        assert!(matches!(unused, Rename::Unused));
        assert!(matches!(
            rename_open_clip("text_projection", 4, false),
            Rename::Unused
        ));
        let Rename::To(t) = rename_open_clip("text_projection", 4, true) else {
            panic!()
        };
        assert_eq!(
            t,
            vec![("text_projection.weight".into(), Transform::Transpose)]
        );
        assert!(matches!(
            rename_open_clip("transformer.x", 4, true),
            Rename::Unknown
        ));
    }

    #[test]
    fn transformers_names_lose_text_model() {
        let Rename::To(t) = rename_hf("text_model.final_layer_norm.bias") else {
            panic!()
        };
        assert_eq!(t[0].0, "final_layer_norm.bias");
        assert!(matches!(
            rename_hf("text_model.embeddings.position_ids"),
            Rename::Unused
        ));
    }
}
