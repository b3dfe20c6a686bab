//! The sizes a checkpoint's tensor shapes tell, written over the config's (reference or
//! `--config`), so one reference config serves every model of a family that differs only in
//! widths or input channels (e.g. SD 1.x inpainting's 9-channel UNet). What shapes cannot tell
//! (attention head counts, the scheduler, the VAE's scaling factor) stays the config's, as in
//! diffusers' `from_single_file`, which infers only what `create_unet_diffusers_config` reads
//! off the checkpoint.

use super::header::Header;
use super::keys::{KeyMap, Mapping, Transform};
use crate::models::configs::{ClipTextConfig, PerBlock, UNetJson, VaeJson};
use crate::{Error, ErrorKind, Message, Result, Setting};
use std::path::Path;

/// The shape a network will see for `name` (after the transform), if the file has it.
fn shape(map: &KeyMap, header: &Header, name: &str) -> Option<Vec<usize>> {
    let source = map.get(name)?;
    let mut shape = header.tensors.get(&source.key)?.shape.clone();
    match source.transform {
        Transform::Copy => {}
        Transform::ConvAsLinear => shape.truncate(2),
        Transform::Chunk { of, .. } => shape[0] /= of,
        Transform::Transpose => shape.reverse(),
    }
    Some(shape)
}

fn dim(map: &KeyMap, header: &Header, name: &str, axis: usize) -> Option<usize> {
    shape(map, header, name)?.get(axis).copied()
}

/// Overwrites the UNet's channel counts and cross-attention width with the file's.
pub fn unet(config: &mut UNetJson, mapping: &Mapping, header: &Header, path: &Path) -> Result<()> {
    let m = &mapping.unet;
    let levels = (0..)
        .take_while(|l| m.contains_key(&format!("down_blocks.{l}.resnets.0.conv1.weight")))
        .count();
    if levels != config.block_out_channels.len() {
        return Err(levels_error(
            path,
            "UNet",
            levels,
            config.block_out_channels.len(),
        ));
    }
    for (l, width) in config.block_out_channels.iter_mut().enumerate() {
        let name = format!("down_blocks.{l}.resnets.0.conv1.weight");
        *width = dim(m, header, &name, 0).unwrap_or(*width);
    }
    if let Some(c) = dim(m, header, "conv_in.weight", 1) {
        config.in_channels = c;
    }
    if let Some(c) = dim(m, header, "conv_out.weight", 0) {
        config.out_channels = c;
    }
    let cross = m
        .keys()
        .find(|k| k.ends_with(".attn2.to_k.weight"))
        .and_then(|k| dim(m, header, k, 1));
    if let Some(c) = cross {
        config.cross_attention_dim = PerBlock::One(c);
    }
    Ok(())
}

/// Overwrites the VAE's widths and latent channels with the file's.
pub fn vae(config: &mut VaeJson, map: &KeyMap, header: &Header, path: &Path) -> Result<()> {
    let levels = (0..)
        .take_while(|l| map.contains_key(&format!("decoder.up_blocks.{l}.resnets.0.conv1.weight")))
        .count();
    if levels != config.block_out_channels.len() {
        return Err(levels_error(
            path,
            "VAE",
            levels,
            config.block_out_channels.len(),
        ));
    }
    // diffusers' decoder runs block_out_channels reversed: up_blocks[i] is level n-1-i wide.
    for (i, width) in config.block_out_channels.iter_mut().rev().enumerate() {
        let name = format!("decoder.up_blocks.{i}.resnets.0.conv2.weight");
        *width = dim(map, header, &name, 0).unwrap_or(*width);
    }
    if let Some(c) = dim(map, header, "decoder.conv_in.weight", 1) {
        config.latent_channels = c;
    }
    if let Some(c) = dim(map, header, "decoder.conv_out.weight", 0) {
        config.out_channels = c;
    }
    Ok(())
}

/// Overwrites a text encoder's widths, vocabulary and length with the file's.
pub fn text(config: &mut ClipTextConfig, map: &KeyMap, header: &Header) {
    let token = shape(map, header, "embeddings.token_embedding.weight");
    if let Some([vocab, hidden]) = token.as_deref() {
        config.vocab_size = *vocab;
        config.hidden_size = *hidden;
    }
    if let Some(n) = dim(map, header, "embeddings.position_embedding.weight", 0) {
        config.max_position_embeddings = n;
    }
    if let Some(n) = dim(map, header, "encoder.layers.0.mlp.fc1.weight", 0) {
        config.intermediate_size = n;
    }
    if let Some(n) = dim(map, header, "text_projection.weight", 0) {
        config.projection_dim = Some(n);
    }
}

fn levels_error(path: &Path, what: &str, file: usize, config: usize) -> Error {
    let message = Message::text(format!(
        "{}: its {what} has {file} levels, the config describes {config}; pass the configs of \
         a model with this architecture (a diffusers folder or repo) to ",
        path.display()
    ))
    .mention(Setting::Config);
    Error::hint(ErrorKind::Model, message)
}
