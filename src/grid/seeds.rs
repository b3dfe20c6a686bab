//! Seed lists: ranges, lists, neighbourhoods. Shared by `grid`, `generate --count` and prompt
//! files.

use crate::{Error, Result};

/// More images than anyone renders in one command; guards against `--seeds 0-99999999`.
pub const MAX_SEEDS: usize = 10_000;

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
            return Err(too_many(text));
        }
        seeds.extend(start..=end);
    }
    Ok(seeds)
}

fn too_many(what: &str) -> Error {
    Error::Invalid(format!(
        "'{what}' names more than {MAX_SEEDS} images; split it into smaller runs"
    ))
}

/// `seed − radius ..= seed + radius`, clipped at the ends of the u64 range.
pub fn around(seed: u64, radius: u64) -> Result<Vec<u64>> {
    let start = seed.saturating_sub(radius);
    let end = seed.saturating_add(radius);
    if end - start >= MAX_SEEDS as u64 {
        return Err(too_many(&format!("--around {radius}")));
    }
    Ok((start..=end).collect())
}

/// `count` consecutive seeds from `start` (image i gets seed + i, as A1111's batches do).
pub fn consecutive(start: u64, count: usize) -> Result<Vec<u64>> {
    if count == 0 {
        return Err(Error::Invalid("count must be at least 1".into()));
    }
    if count > MAX_SEEDS {
        return Err(too_many(&format!("count {count}")));
    }
    let last = start.checked_add(count as u64 - 1).ok_or_else(|| {
        Error::Invalid(format!(
            "seeds {start} + {count} run past the largest seed; start lower"
        ))
    })?;
    Ok((start..=last).collect())
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
}
