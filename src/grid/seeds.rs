//! Seed lists: ranges, lists, neighbourhoods. Shared by `grid`, `generate --count` and prompt
//! files.

use crate::recipe::Recipe;
use crate::{Error, ErrorKind, Message, Result, Setting};

/// More images than anyone renders in one command; guards against `--seeds 0-99999999`.
pub(crate) const MAX_SEEDS: usize = 10_000;

/// Parses `716-724` (inclusive), `1,5,9`, or a mix such as `1-3,10`.
pub fn parse_seed_list(text: &str) -> Result<Vec<u64>> {
    let mut seeds = Vec::new();
    for item in text.split(',').map(str::trim) {
        let bad = || {
            Error::Invalid(format!(
                "'{item}' in seed list '{text}' is not a seed or a range; write seeds like 721, 716-724 or 1,5,9"
            ))
        };
        let (start, end) = match item.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u64>().map_err(|_| bad())?,
                b.trim().parse::<u64>().map_err(|_| bad())?,
            ),
            None => {
                let s = item.parse::<u64>().map_err(|_| bad())?;
                (s, s)
            }
        };
        if end < start {
            return Err(Error::Invalid(format!(
                "seed range {item} runs backwards; write {end}-{start}"
            )));
        }
        if (end - start) as usize >= MAX_SEEDS || seeds.len() + (end - start) as usize >= MAX_SEEDS
        {
            return Err(too_many(text.into()));
        }
        seeds.extend(start..=end);
    }
    Ok(seeds)
}

/// `what` is the text as given, or the setting that asked for the seeds.
fn too_many(what: Message) -> Error {
    let message = Message::text("'").append(what).then(format!(
        "' names more than {MAX_SEEDS} images; split it into smaller runs"
    ));
    Error::hint(ErrorKind::BadInput, message)
}

/// `seed − radius ..= seed + radius`, clipped at the ends of the u64 range.
pub fn around(seed: u64, radius: u64) -> Result<Vec<u64>> {
    let start = seed.saturating_sub(radius);
    let end = seed.saturating_add(radius);
    if end - start >= MAX_SEEDS as u64 {
        return Err(too_many(Message::default().set(Setting::Around, radius)));
    }
    Ok((start..=end).collect())
}

/// `count` consecutive seeds from `start` (image i gets seed + i, as A1111's batches do).
pub fn consecutive(start: u64, count: usize) -> Result<Vec<u64>> {
    if count == 0 {
        return Err(Error::Invalid("count must be at least 1".into()));
    }
    if count > MAX_SEEDS {
        return Err(too_many(format!("count {count}").into()));
    }
    let last = start.checked_add(count as u64 - 1).ok_or_else(|| {
        Error::Invalid(format!(
            "seeds {start} + {count} run past the largest seed; start lower"
        ))
    })?;
    Ok((start..=last).collect())
}

/// The `count` recipes of `generate --count`, as A1111 makes a batch: image i gets seed + i;
/// but when a variation is in use (a variation seed at a strength above 0), the seed stays and
/// the variation seed counts up instead, so the images are variations of one image (A1111's
/// `all_seeds` / `all_subseeds`). Only which recipes are made depends on this, never the pixels
/// of a given recipe.
pub fn count_recipes(base: &Recipe, count: usize) -> Result<Vec<Recipe>> {
    match base.variation_seed {
        Some(v) if base.variation_strength > 0.0 => Ok(consecutive(v, count)
            .map_err(|e| Error::Invalid(format!("variation {e}")))?
            .into_iter()
            .map(|v| Recipe {
                variation_seed: Some(v),
                ..base.clone()
            })
            .collect()),
        _ => Ok(consecutive(base.seed, count)?
            .into_iter()
            .map(|seed| Recipe {
                seed,
                ..base.clone()
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_lists_and_mixes() {
        assert_eq!(
            parse_seed_list("716-720").unwrap(),
            vec![716, 717, 718, 719, 720]
        );
        assert_eq!(parse_seed_list("1,5,9").unwrap(), vec![1, 5, 9]);
        assert_eq!(parse_seed_list(" 1-3 , 10").unwrap(), vec![1, 2, 3, 10]);
        assert_eq!(parse_seed_list("7").unwrap(), vec![7]);
    }

    #[test]
    fn bad_lists_name_the_item_and_the_fix() {
        let e = parse_seed_list("1,x,3").unwrap_err().to_string();
        assert!(
            e.contains("'x' in seed list '1,x,3' is not a seed or a range"),
            "{e}"
        );
        let e = parse_seed_list("9-3").unwrap_err().to_string();
        assert!(e.contains("runs backwards; write 3-9"), "{e}");
        assert!(parse_seed_list("0-99999999").is_err());
        assert!(parse_seed_list("").is_err());
    }

    #[test]
    fn neighbourhoods_clip_at_zero() {
        assert_eq!(around(721, 4).unwrap(), (717..=725).collect::<Vec<_>>());
        assert_eq!(around(1, 3).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(consecutive(5, 3).unwrap(), vec![5, 6, 7]);
        assert!(consecutive(u64::MAX, 2).is_err());
        assert!(consecutive(1, 0).is_err());
    }

    /// As A1111: a count varies the seed, or, with a variation in use, the variation seed.
    #[test]
    fn counts_vary_the_variation_seed_when_a_variation_is_in_use() {
        let base = Recipe {
            seed: 5,
            variation_seed: Some(10),
            variation_strength: 0.3,
            ..Recipe::default()
        };
        let made = count_recipes(&base, 3).unwrap();
        let pairs: Vec<(u64, Option<u64>)> =
            made.iter().map(|r| (r.seed, r.variation_seed)).collect();
        assert_eq!(pairs, [(5, Some(10)), (5, Some(11)), (5, Some(12))]);
        assert_eq!(
            made[1],
            Recipe {
                variation_seed: Some(11),
                ..base.clone()
            }
        );
        let plain = Recipe {
            variation_seed: None,
            variation_strength: 0.0,
            ..base.clone()
        };
        let seeds: Vec<u64> = count_recipes(&plain, 3)
            .unwrap()
            .iter()
            .map(|r| r.seed)
            .collect();
        assert_eq!(seeds, [5, 6, 7]);
        let top = Recipe {
            variation_seed: Some(u64::MAX),
            ..base
        };
        let e = count_recipes(&top, 2).unwrap_err().to_string();
        assert!(
            e.contains("variation seeds 18446744073709551615 + 2 run past"),
            "{e}"
        );
    }
}
