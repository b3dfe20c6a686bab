//! Grid plans: which recipe goes in which cell. A seed grid varies only the seed; an X/Y plot
//! varies one recipe field along the columns and optionally another along the rows (as
//! AUTOMATIC1111's X/Y/Z plot script, including its prompt search/replace axis).

use super::seeds::{parse_seed_list, MAX_SEEDS};
use super::sheet::near_square;
use crate::recipe::fields::{Field, Kind, FIELDS};
use crate::recipe::Recipe;
use crate::{Error, ErrorKind, Message, Result, Setting};
use std::fmt;
use std::str::FromStr;

/// What an axis varies: a recipe field whose declaration allows it (`Field::axis`), or the
/// prompt by search/replace.
#[derive(Debug, Clone, Copy)]
pub enum AxisField {
    Field(&'static Field),
    /// Prompt search/replace: the first value is searched for in the prompt, every value
    /// (the first included) replaces it in turn.
    PromptSr,
}

impl PartialEq for AxisField {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl AxisField {
    /// Every axis, in the order of the field declarations, then prompt_sr.
    fn all() -> impl Iterator<Item = AxisField> {
        FIELDS
            .iter()
            .filter(|f| f.axis)
            .map(AxisField::Field)
            .chain([AxisField::PromptSr])
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            AxisField::Field(f) => f.name,
            AxisField::PromptSr => "prompt_sr",
        }
    }

    /// Whether values are whole numbers that may be written as ranges (`1-4`).
    fn takes_ranges(self) -> bool {
        matches!(
            self,
            AxisField::Field(Field {
                kind: Kind::Seed | Kind::Whole { .. },
                ..
            })
        )
    }
}

/// One axis: a field and the values it takes, as written (`cfg=3,5,7`, `seed=1-4`).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub field: AxisField,
    pub values: Vec<String>,
}

impl FromStr for Axis {
    type Err = Error;

    fn from_str(text: &str) -> Result<Axis> {
        let known = || {
            AxisField::all()
                .map(AxisField::name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (name, list) = text.split_once('=').ok_or_else(|| {
            Error::Invalid(format!(
                "axis '{text}' needs the form FIELD=VALUES, e.g. cfg=3,5,7 or seed=1-4; fields: {}",
                known()
            ))
        })?;
        let name = name.trim();
        let field = AxisField::all().find(|f| f.name() == name).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown axis field '{name}'; use one of: {}",
                known()
            ))
        })?;
        let values: Vec<String> = if field.takes_ranges() {
            parse_seed_list(list)
                .map_err(|e| Error::Invalid(format!("axis {name}: {e}")))?
                .into_iter()
                .map(|v| v.to_string())
                .collect()
        } else {
            list.split(',').map(|v| v.trim().to_string()).collect()
        };
        if values.is_empty() || values.iter().any(String::is_empty) {
            return Err(Error::Invalid(format!(
                "axis {name} has an empty value in '{list}'"
            )));
        }
        // An A1111 network tag in a value would change the weights from cell to cell (A1111's
        // X/Y/Z plot re-reads each cell's prompt, scripts/xyz_grid.py); seedling's cells share
        // one session's weights, so the tag would be encoded as text. Refused, naming the way.
        if let Some(tag) = values
            .iter()
            .find_map(|v| crate::prompt_networks::take_tags(v).1.into_iter().next())
        {
            let message = Message::text(format!(
                "axis {name}: the value holds the tag {}, and an axis cannot change the weights \
                 from cell to cell; apply the LoRA to the whole grid with ",
                tag.text
            ))
            .mention(Setting::Lora)
            .then(" (or a <lora:…> tag in the prompt) and leave it out of the axis");
            return Err(Error::hint(ErrorKind::BadInput, message));
        }
        let axis = Axis { field, values };
        // Check every value now, so a typo fails before any image is rendered.
        let probe = Recipe::default();
        for i in 0..axis.values.len() {
            if field != AxisField::PromptSr {
                axis.apply(&probe, i)?;
            }
        }
        Ok(axis)
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field.name(), self.values.join(","))
    }
}

impl Axis {
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The label of value `i`, e.g. `cfg 7.5`, or the replacement text for prompt_sr.
    pub(crate) fn label(&self, i: usize) -> String {
        match self.field {
            AxisField::PromptSr => self.values[i].clone(),
            f => format!("{} {}", f.name(), self.values[i]),
        }
    }

    /// `recipe` with value `i` of this axis.
    pub(crate) fn apply(&self, recipe: &Recipe, i: usize) -> Result<Recipe> {
        let v = self.values[i].as_str();
        let name = self.field.name();
        let mut r = recipe.clone();
        match self.field {
            AxisField::Field(f) => {
                let value = match f.kind {
                    // Unknown names are refused with the list of known ones.
                    Kind::Choice(_) | Kind::Text => f.parse(v).map_err(Error::Invalid)?,
                    _ => f.typed(v).ok_or_else(|| {
                        Error::Invalid(format!("axis {name}: '{v}' is not {}", f.noun))
                    })?,
                };
                f.in_range(&value)
                    .map_err(|e| Error::Invalid(format!("axis {name}: {e}")))?;
                f.set(&mut r, value);
            }
            AxisField::PromptSr => {
                let search = &self.values[0];
                if !recipe.prompt.contains(search.as_str()) {
                    return Err(Error::Invalid(format!(
                        "axis prompt_sr: the prompt does not contain '{search}' (the first value is what \
                         gets replaced); start the list with a word of the prompt"
                    )));
                }
                r.prompt = recipe.prompt.replace(search.as_str(), v);
            }
        }
        Ok(r)
    }
}

/// The most cells an X/Y plot may have: as many images as a seed list may name, so a plot is
/// bounded as a seed grid is (each axis alone is already capped by the seed-list parser, but two
/// axes of 9 999 values made a 10⁸-cell plan that aborted on a 32.8 GB allocation).
pub(crate) const MAX_CELLS: usize = MAX_SEEDS;

/// Refuses an X/Y plot of more than [`MAX_CELLS`] cells from the axes' lengths alone, before any
/// cell is built; returns the number of cells.
pub fn check_xy_size(x: &Axis, y: Option<&Axis>) -> Result<usize> {
    let rows = y.map_or(1, Axis::len);
    let cells = x.len().saturating_mul(rows);
    if cells <= MAX_CELLS {
        return Ok(cells);
    }
    let what = match y {
        Some(_) => format!("--x and --y make {cells} cells ({} × {rows})", x.len()),
        None => format!("--x makes {cells} cells"),
    };
    Err(Error::Invalid(format!(
        "{what}, more than the {MAX_CELLS} a grid may have; give the axes fewer values, or split \
         the plot into several grids"
    )))
}

/// Refuses a variation_seed axis at variation strength 0 with no variation_strength axis: every
/// cell would be the same image (strength 0 uses only the seed's noise).
fn check_variation_axes(base: &Recipe, x: &Axis, y: Option<&Axis>) -> Result<()> {
    let fields: Vec<&str> = std::iter::once(x)
        .chain(y)
        .map(|a| a.field.name())
        .collect();
    if fields.contains(&"variation_seed")
        && !fields.contains(&"variation_strength")
        && base.variation_strength == 0.0
    {
        let message = Message::text(
            "axis variation_seed changes nothing at variation strength 0 (every cell would be \
             the same image); add ",
        )
        .set(Setting::field("variation_strength"), "W")
        .then(", e.g. 0.1, or a variation_strength axis");
        return Err(Error::hint(ErrorKind::BadInput, message));
    }
    Ok(())
}

/// One cell of a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub recipe: Recipe,
    pub col: usize,
    pub row: usize,
    /// The caption under the cell.
    pub label: String,
}

/// Every cell of a grid, row-major, and how to lay them out.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cells: Vec<Cell>,
    pub cols: usize,
    pub rows: usize,
    pub col_labels: Option<Vec<String>>,
    pub row_labels: Option<Vec<String>>,
    pub x_axis: Option<String>,
    pub y_axis: Option<String>,
}

/// `base` at each of `seeds`, in a near-square grid, each cell captioned with its seed.
pub fn seed_plan(base: &Recipe, seeds: &[u64]) -> Plan {
    let (cols, rows) = near_square(seeds.len());
    let cells = seeds
        .iter()
        .enumerate()
        .map(|(i, &seed)| Cell {
            recipe: Recipe {
                seed,
                ..base.clone()
            },
            col: i % cols.max(1),
            row: i / cols.max(1),
            label: format!("seed {seed}"),
        })
        .collect();
    Plan {
        cells,
        cols,
        rows,
        col_labels: None,
        row_labels: None,
        x_axis: None,
        y_axis: None,
    }
}

/// An X/Y plot: `x` along the columns, `y` (if any) along the rows. Captions show the seed and
/// any axis value the column and row labels do not already say.
pub fn xy_plan(base: &Recipe, x: &Axis, y: Option<&Axis>) -> Result<Plan> {
    if let Some(y) = y {
        if y.field == x.field {
            return Err(Error::Invalid(format!(
                "--x and --y both vary {}; give them different fields",
                x.field.name()
            )));
        }
    }
    check_xy_size(x, y)?;
    check_variation_axes(base, x, y)?;
    let rows = y.map_or(1, Axis::len);
    let mut cells = Vec::with_capacity(x.len() * rows);
    for row in 0..rows {
        let row_recipe = match y {
            Some(y) => y.apply(base, row)?,
            None => base.clone(),
        };
        for col in 0..x.len() {
            let recipe = x.apply(&row_recipe, col)?;
            let label = format!("seed {}", recipe.seed);
            cells.push(Cell {
                recipe,
                col,
                row,
                label,
            });
        }
    }
    Ok(Plan {
        cells,
        cols: x.len(),
        rows,
        col_labels: Some((0..x.len()).map(|i| x.label(i)).collect()),
        row_labels: y.map(|y| (0..y.len()).map(|i| y.label(i)).collect()),
        x_axis: Some(x.to_string()),
        y_axis: y.map(Axis::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::SamplerKind;

    fn base() -> Recipe {
        Recipe {
            prompt: "a cat on a mat".into(),
            seed: 721,
            ..Recipe::default()
        }
    }

    #[test]
    fn axes_parse_and_apply() {
        let a: Axis = "seed=1-3".parse().unwrap();
        assert_eq!(a.values, vec!["1", "2", "3"]);
        assert_eq!(a.apply(&base(), 2).unwrap().seed, 3);
        let c: Axis = "cfg=3, 5.5 ,7".parse().unwrap();
        assert_eq!(c.apply(&base(), 1).unwrap().cfg, 5.5);
        assert_eq!(c.label(1), "cfg 5.5");
        let s: Axis = "sampler=ddim,euler_a".parse().unwrap();
        assert_eq!(
            s.apply(&base(), 1).unwrap().sampler,
            SamplerKind::EulerAncestral
        );
        let p: Axis = "prompt_sr=cat,dog,fox".parse().unwrap();
        assert_eq!(p.apply(&base(), 0).unwrap().prompt, "a cat on a mat");
        assert_eq!(p.apply(&base(), 2).unwrap().prompt, "a fox on a mat");
        let v: Axis = "variation_strength=0,0.1,0.4".parse().unwrap();
        assert_eq!(v.apply(&base(), 2).unwrap().variation_strength, 0.4);
    }

    #[test]
    fn bad_axes_name_the_fix() {
        let e = "colour=red".parse::<Axis>().unwrap_err().to_string();
        assert!(
            e.contains("unknown axis field 'colour'; use one of: seed, cfg"),
            "{e}"
        );
        let e = "cfg".parse::<Axis>().unwrap_err().to_string();
        assert!(e.contains("needs the form FIELD=VALUES"), "{e}");
        let e = "cfg=3,x".parse::<Axis>().unwrap_err().to_string();
        assert!(e.contains("axis cfg: 'x' is not a guidance scale"), "{e}");
        let e = "sampler=dpm".parse::<Axis>().unwrap_err().to_string();
        assert!(e.contains("unknown sampler 'dpm'"), "{e}");
        let e = "prompt_sr=dog,fox"
            .parse::<Axis>()
            .unwrap()
            .apply(&base(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the prompt does not contain 'dog'"), "{e}");
    }

    #[test]
    fn seed_grids_are_near_square_and_row_major() {
        let plan = seed_plan(&base(), &(717..=725).collect::<Vec<_>>());
        assert_eq!((plan.cols, plan.rows), (3, 3));
        assert_eq!(plan.cells[4].recipe.seed, 721);
        assert_eq!((plan.cells[4].col, plan.cells[4].row), (1, 1));
        assert_eq!(plan.cells[4].label, "seed 721");
    }

    #[test]
    fn xy_plots_vary_x_along_columns_and_y_along_rows() {
        let x: Axis = "seed=1-4".parse().unwrap();
        let y: Axis = "cfg=3,5,7".parse().unwrap();
        let plan = xy_plan(&base(), &x, Some(&y)).unwrap();
        assert_eq!((plan.cols, plan.rows, plan.cells.len()), (4, 3, 12));
        let c = &plan.cells[6]; // row 1, col 2
        assert_eq!((c.row, c.col, c.recipe.seed, c.recipe.cfg), (1, 2, 3, 5.0));
        assert_eq!(plan.row_labels.as_ref().unwrap()[2], "cfg 7");
        assert_eq!(plan.x_axis.as_deref(), Some("seed=1,2,3,4"));
        assert!(xy_plan(&base(), &x, Some(&x)).is_err());
    }

    #[test]
    fn a_variation_seed_axis_needs_a_strength() {
        let v: Axis = "variation_seed=1-3".parse().unwrap();
        let e = xy_plan(&base(), &v, None).unwrap_err().to_string();
        assert!(
            e.starts_with("axis variation_seed changes nothing at variation strength 0"),
            "{e}"
        );
        let strong = Recipe {
            variation_strength: 0.2,
            ..base()
        };
        assert_eq!(xy_plan(&strong, &v, None).unwrap().cells.len(), 3);
        let s: Axis = "variation_strength=0,0.5".parse().unwrap();
        assert_eq!(xy_plan(&base(), &v, Some(&s)).unwrap().cells.len(), 6);
    }

    /// Two axes of 9 999 values each (what the seed-list parser allows) once planned 10⁸ cells
    /// and aborted on a 32.8 GB allocation; now refused from the lengths alone. The refusal
    /// comes before any cell exists: `xy_plan` would need gigabytes and minutes to build them.
    #[test]
    fn plots_past_the_cell_limit_are_refused_before_planning() {
        let x: Axis = "seed=1-9999".parse().unwrap();
        let y: Axis = "steps=1-9999".parse().unwrap();
        let e = xy_plan(&base(), &x, Some(&y)).unwrap_err().to_string();
        assert_eq!(
            e,
            "--x and --y make 99980001 cells (9999 × 9999), more than the 10000 a grid may \
             have; give the axes fewer values, or split the plot into several grids"
        );
        let cfgs = vec!["7"; MAX_CELLS + 1].join(",");
        let wide: Axis = format!("cfg={cfgs}").parse().unwrap();
        let e = check_xy_size(&wide, None).unwrap_err().to_string();
        assert!(
            e.starts_with("--x makes 10001 cells, more than the 10000"),
            "{e}"
        );
        // The limit itself is a plot.
        let y: Axis = "steps=1-100".parse().unwrap();
        let x: Axis = "seed=1-100".parse().unwrap();
        assert_eq!(check_xy_size(&x, Some(&y)).unwrap(), MAX_CELLS);
        assert_eq!(
            xy_plan(&base(), &x, Some(&y)).unwrap().cells.len(),
            MAX_CELLS
        );
    }
}
