//! One declaration per recipe field a user can set: its name, flag, value type, parser, range
//! and help. The command line's flags, replay's overrides, grid axes, job files, the range
//! checks of `Recipe::validate`, the A1111 writer and the readers of other tools' metadata
//! (`metadata::foreign`, `metadata::a1111`) are all read from [`FIELDS`]; adding a field is one
//! entry here (plus its place in `Recipe` and `Overrides`) and its tests.

use super::{ModelDType, Overrides, Recipe, MAX_SIDE};
use crate::noise::RngKind;
use crate::sampler::{SamplerKind, ScheduleKind};
use crate::Result;
use std::fmt;

/// A field's value, whatever its type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    Text(String),
    Seed(u64),
    /// A variation seed left out.
    NoSeed,
    Whole(u32),
    Number(f64),
    Flag(bool),
    Rng(RngKind),
    Sampler(SamplerKind),
    Schedule(ScheduleKind),
    DType(ModelDType),
}

impl fmt::Display for Value {
    /// As the provenance's `field=value` lines and grid labels write it (text quoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Seed(s) => write!(f, "{s}"),
            Value::NoSeed => f.write_str("none"),
            Value::Whole(n) => write!(f, "{n}"),
            Value::Number(x) => write!(f, "{x}"),
            Value::Flag(b) => write!(f, "{b}"),
            Value::Rng(k) => write!(f, "{k}"),
            Value::Sampler(k) => write!(f, "{k}"),
            Value::Schedule(k) => write!(f, "{k}"),
            Value::DType(d) => write!(f, "{d}"),
        }
    }
}

/// What values a field takes, and so how each front end reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Kind {
    Text,
    /// A whole number that fits the u64 every noise source is keyed by.
    Seed,
    /// A whole number from `min` to `max`.
    Whole {
        min: u32,
        max: u32,
    },
    /// A width or height: whole pixels from 1 to [`MAX_SIDE`] (the multiple the model needs is
    /// checked against the model).
    Side,
    /// A finite number from `min` to `max`.
    Number {
        min: f64,
        max: f64,
    },
    /// One of a list of names.
    Choice(Choice),
    /// true or false (a flag without value on the command line).
    Flag,
}

/// The named values of a choice field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Choice {
    Rng,
    Sampler,
    Schedule,
    DType,
}

impl Choice {
    pub(crate) fn names(self) -> Vec<&'static str> {
        match self {
            Choice::Rng => RngKind::ALL.map(RngKind::name).to_vec(),
            Choice::Sampler => SamplerKind::ALL.map(SamplerKind::name).to_vec(),
            Choice::Schedule => ScheduleKind::ALL.map(ScheduleKind::name).to_vec(),
            Choice::DType => ModelDType::ALL.map(ModelDType::name).to_vec(),
        }
    }

    /// The value named `s`; the error lists the names.
    fn parse(self, s: &str) -> Result<Value> {
        Ok(match self {
            Choice::Rng => Value::Rng(s.parse()?),
            Choice::Sampler => Value::Sampler(s.parse()?),
            Choice::Schedule => Value::Schedule(s.parse()?),
            Choice::DType => Value::DType(s.parse()?),
        })
    }
}

/// One settable recipe field.
pub struct Field {
    /// The recipe JSON key, which job files and grid axes use too.
    pub name: &'static str,
    /// The command-line flag, without `--`.
    pub flag: &'static str,
    /// The flag's value placeholder in help, e.g. `W`.
    pub value_name: &'static str,
    /// One line for `--help` and the docs.
    pub help: &'static str,
    /// What one value is, for messages: "a guidance scale".
    pub noun: &'static str,
    pub kind: Kind,
    /// How a value out of range is put right, after "use a value": `from 0 to 100 (…)`.
    pub range_help: &'static str,
    /// Whether a grid axis may vary it.
    pub axis: bool,
    /// Where the field lives in a [`Recipe`] and in an [`Overrides`] patch.
    access: Access,
}

/// Reads and writes one field's place in a recipe and in a patch, as [`Value`]s.
struct Access {
    get: fn(&Recipe) -> Value,
    /// Takes a value of the field's kind.
    set: fn(&mut Recipe, Value),
    patched: fn(&Overrides) -> Option<Value>,
    /// Takes a value of the field's kind.
    patch: fn(&mut Overrides, Value),
}

/// The [`Access`] of a field held as `T` in the recipe and `Option<T>` in the patch, as
/// `Value::$variant(T)`; `ref` for a field that is cloned rather than copied.
macro_rules! plain {
    (ref $field:ident, $variant:ident) => {
        plain!(@ $field, $variant, |x: &_| Clone::clone(x))
    };
    ($field:ident, $variant:ident) => {
        plain!(@ $field, $variant, |x: &_| *x)
    };
    (@ $field:ident, $variant:ident, $take:expr) => {
        Access {
            get: |r| Value::$variant($take(&r.$field)),
            set: |r, v| match v {
                Value::$variant(x) => r.$field = x,
                v => wrong(stringify!($field), &v),
            },
            patched: |o| o.$field.as_ref().map($take).map(Value::$variant),
            patch: |o, v| match v {
                Value::$variant(x) => o.$field = Some(x),
                v => wrong(stringify!($field), &v),
            },
        }
    };
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field").field("name", &self.name).finish()
    }
}

/// A value that does not belong to a field is a programming error in the table.
fn wrong(field: &str, v: &Value) -> ! {
    unreachable!("field {field} was given {v:?}")
}

/// Every settable field, in the order overrides are listed in a replay's provenance and axes
/// in help.
pub const FIELDS: &[Field] = &[
    Field {
        name: "prompt",
        flag: "prompt",
        value_name: "TEXT",
        help: "What to draw",
        noun: "text",
        kind: Kind::Text,
        range_help: "",
        axis: false,
        access: plain!(ref prompt, Text),
    },
    Field {
        name: "negative_prompt",
        flag: "negative",
        value_name: "TEXT",
        help: "What to steer away from (used when cfg > 1)",
        noun: "text",
        kind: Kind::Text,
        range_help: "",
        axis: false,
        access: plain!(ref negative_prompt, Text),
    },
    Field {
        name: "seed",
        flag: "seed",
        value_name: "SEED",
        help: "Seed, 0 to 2^64 − 1 [default: random, printed and recorded]",
        noun: "a seed",
        kind: Kind::Seed,
        range_help: "",
        axis: true,
        access: plain!(seed, Seed),
    },
    Field {
        name: "cfg",
        flag: "cfg",
        value_name: "CFG",
        help: "Classifier-free guidance scale (at most 1 = no guidance)",
        noun: "a guidance scale",
        kind: Kind::Number {
            min: 0.0,
            max: 100.0,
        },
        range_help: "from 0 to 100 (typical: 7.5, or 0 for turbo models)",
        axis: true,
        access: plain!(cfg, Number),
    },
    Field {
        name: "steps",
        flag: "steps",
        value_name: "STEPS",
        help: "Denoising steps",
        noun: "a step count",
        kind: Kind::Whole {
            min: 1,
            max: u32::MAX,
        },
        range_help: "of at least 1 (try 4 for sd-turbo, 25 for other models)",
        axis: true,
        access: plain!(steps, Whole),
    },
    Field {
        name: "sampler",
        flag: "sampler",
        value_name: "NAME",
        help: "Sampler: ddim, euler, euler_a, dpmpp_2m, unipc, pndm or lcm [default: the model \
               preset's, else euler_a]",
        noun: "a sampler",
        kind: Kind::Choice(Choice::Sampler),
        range_help: "",
        axis: true,
        access: plain!(sampler, Sampler),
    },
    Field {
        name: "schedule",
        flag: "schedule",
        value_name: "default|karras",
        help: "Noise-level spacing: default (the model's scheduler config) or karras",
        noun: "a schedule",
        kind: Kind::Choice(Choice::Schedule),
        range_help: "",
        axis: true,
        access: plain!(schedule, Schedule),
    },
    Field {
        name: "eta",
        flag: "eta",
        value_name: "ETA",
        help: "DDIM eta (0 = deterministic)",
        noun: "an eta",
        kind: Kind::Number { min: 0.0, max: 1.0 },
        range_help: "from 0 (deterministic DDIM) to 1",
        axis: true,
        access: plain!(eta, Number),
    },
    Field {
        name: "variation_seed",
        flag: "variation-seed",
        value_name: "SEED",
        help: "Mix in the noise of this second seed (A1111's variation seed), as much as \
               --variation-strength says",
        noun: "a seed",
        kind: Kind::Seed,
        range_help: "",
        axis: true,
        // A recipe without a variation seed reads as `NoSeed`; a patch sets one or none.
        access: Access {
            get: |r| r.variation_seed.map_or(Value::NoSeed, Value::Seed),
            set: |r, v| match v {
                Value::Seed(s) => r.variation_seed = Some(s),
                Value::NoSeed => r.variation_seed = None,
                v => wrong("variation_seed", &v),
            },
            patched: |o| o.variation_seed.map(Value::Seed),
            patch: |o, v| match v {
                Value::Seed(s) => o.variation_seed = Some(s),
                v => wrong("variation_seed", &v),
            },
        },
    },
    Field {
        name: "variation_strength",
        flag: "variation-strength",
        value_name: "W",
        help: "How much of --variation-seed's noise: 0 = none, 1 = all",
        noun: "a strength",
        kind: Kind::Number { min: 0.0, max: 1.0 },
        range_help: "from 0 (only the seed) to 1 (only the variation seed)",
        axis: true,
        access: plain!(variation_strength, Number),
    },
    Field {
        name: "width",
        flag: "width",
        value_name: "WIDTH",
        help: "Image width in pixels",
        noun: "a size in pixels",
        kind: Kind::Side,
        range_help: "",
        axis: true,
        access: plain!(width, Whole),
    },
    Field {
        name: "height",
        flag: "height",
        value_name: "HEIGHT",
        help: "Image height in pixels",
        noun: "a size in pixels",
        kind: Kind::Side,
        range_help: "",
        axis: true,
        access: plain!(height, Whole),
    },
    Field {
        name: "rng",
        flag: "rng",
        value_name: "chacha|torch-cpu|philox",
        help: "Noise generator: chacha (default), torch-cpu for diffusers/ComfyUI seeds, philox \
               for AUTOMATIC1111 \"NV\" seeds",
        noun: "a noise generator",
        kind: Kind::Choice(Choice::Rng),
        range_help: "",
        axis: false,
        access: plain!(rng, Rng),
    },
    Field {
        name: "dtype",
        flag: "dtype",
        value_name: "f32|f16|bf16",
        help: "Precision of the networks (latents and sampler math stay f32)",
        noun: "a dtype",
        kind: Kind::Choice(Choice::DType),
        range_help: "",
        axis: false,
        access: plain!(dtype, DType),
    },
    Field {
        name: "truncate_prompt",
        flag: "truncate",
        value_name: "",
        help: "Drop prompt tokens past the text encoder's limit instead of refusing the prompt",
        noun: "true or false",
        kind: Kind::Flag,
        range_help: "",
        axis: false,
        access: plain!(truncate_prompt, Flag),
    },
];

/// The field named `name` (its recipe name).
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

impl Field {
    /// The recipe's value of this field.
    pub(crate) fn get(&self, recipe: &Recipe) -> Value {
        (self.access.get)(recipe)
    }

    /// Sets the recipe's value; `value` is of this field's kind (a [`Field::parse`] result).
    pub(crate) fn set(&self, recipe: &mut Recipe, value: Value) {
        (self.access.set)(recipe, value)
    }

    /// The patch's value of this field, if it sets one.
    pub(crate) fn patched(&self, patch: &Overrides) -> Option<Value> {
        (self.access.patched)(patch)
    }

    /// Sets this field in a patch; `value` is of this field's kind.
    pub fn patch(&self, patch: &mut Overrides, value: Value) {
        (self.access.patch)(patch, value)
    }

    /// Reads a value of this field from text (a flag's value, an axis value); the error says
    /// what the field takes, without naming where the text came from.
    pub fn parse(&self, s: &str) -> std::result::Result<Value, String> {
        match self.kind {
            Kind::Text => Ok(Value::Text(s.to_string())),
            Kind::Seed => s
                .parse()
                .map(Value::Seed)
                .map_err(|_| format!("seeds are whole numbers from 0 to {}", u64::MAX)),
            Kind::Whole { .. } | Kind::Side => {
                let n: u32 = s.trim().parse().map_err(|_| self.expected())?;
                self.in_range(&Value::Whole(n))?;
                Ok(Value::Whole(n))
            }
            Kind::Number { .. } => {
                let x: f64 = s.trim().parse().map_err(|_| self.expected())?;
                self.in_range(&Value::Number(x))?;
                Ok(Value::Number(x))
            }
            Kind::Choice(c) => c.parse(s).map_err(|e| e.to_string()),
            Kind::Flag => s
                .parse()
                .map(Value::Flag)
                .map_err(|_| "expected true or false".to_string()),
        }
    }

    /// Reads a number or seed from text without its range check; `None` when the text is not
    /// one, or the field takes names or text.
    pub fn typed(&self, s: &str) -> Option<Value> {
        let s = s.trim();
        match self.kind {
            Kind::Seed => s.parse().ok().map(Value::Seed),
            Kind::Whole { .. } | Kind::Side => s.parse().ok().map(Value::Whole),
            Kind::Number { .. } => s
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .map(Value::Number),
            Kind::Flag => s.parse().ok().map(Value::Flag),
            Kind::Text | Kind::Choice(_) => None,
        }
    }

    /// What a value of this field is, as an error: "expected a number from 0 to 1".
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Text => "expected text".into(),
            Kind::Seed => format!("expected a whole number from 0 to {}", u64::MAX),
            Kind::Whole { min, .. } => format!("expected a whole number of at least {min}"),
            Kind::Side => {
                format!("expected a size in pixels (a whole number from 1 to {MAX_SIDE})")
            }
            Kind::Number { .. } => format!("expected a number {}", self.range_help),
            Kind::Choice(c) => format!("expected one of: {}", c.names().join(", ")),
            Kind::Flag => "expected true or false".into(),
        }
    }

    /// Refuses a value outside the field's declared range, with the fix.
    pub(crate) fn in_range(&self, v: &Value) -> std::result::Result<(), String> {
        let fits = match (self.kind, v) {
            (Kind::Number { min, max }, Value::Number(x)) => {
                x.is_finite() && (min..=max).contains(x)
            }
            (Kind::Whole { min, max }, Value::Whole(n)) => (min..=max).contains(n),
            (Kind::Side, Value::Whole(n)) => (1..=MAX_SIDE).contains(n),
            _ => true,
        };
        if fits {
            return Ok(());
        }
        let name = self.name;
        Err(match self.kind {
            Kind::Side => format!(
                "{name} {v} is out of range; use a whole number of pixels from 1 to {MAX_SIDE}"
            ),
            Kind::Whole { .. } => format!(
                "{name} {v} is out of range; use a whole number {}",
                self.range_help
            ),
            _ => format!(
                "{name} {v} is out of range; use a value {}",
                self.range_help
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field's `get`, `patched` and `patch` agree on the field: a value read from one
    /// recipe, patched into another, comes back from both.
    #[test]
    fn every_field_reads_and_writes_its_own_place() {
        let from = Recipe {
            prompt: "a".into(),
            negative_prompt: "b".into(),
            seed: 11,
            rng: RngKind::Philox,
            width: 640,
            height: 384,
            sampler: SamplerKind::Ddim,
            schedule: ScheduleKind::Karras,
            variation_seed: Some(12),
            variation_strength: 0.5,
            steps: 9,
            cfg: 3.5,
            eta: 0.25,
            dtype: ModelDType::Bf16,
            truncate_prompt: true,
            ..Recipe::default()
        };
        let mut patch = Overrides::default();
        for f in FIELDS {
            assert_eq!(f.patched(&patch), None, "{}", f.name);
            f.patch(&mut patch, f.get(&from));
            assert_eq!(f.patched(&patch), Some(f.get(&from)), "{}", f.name);
        }
        let (to, changed) = patch.apply(&Recipe::default());
        assert_eq!(
            to,
            Recipe {
                model: to.model.clone(),
                schema: to.schema,
                ..from
            }
        );
        assert_eq!(changed.len(), FIELDS.len());
    }

    #[test]
    fn names_are_unique_and_flags_are_the_names_or_declared() {
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
        for f in FIELDS {
            let plain = f.name.replace('_', "-");
            assert!(
                f.flag == plain || ["negative", "truncate"].contains(&f.flag),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn text_is_parsed_and_ranges_are_checked_as_declared() {
        let cfg = field("cfg").unwrap();
        assert_eq!(cfg.parse("7.5"), Ok(Value::Number(7.5)));
        assert_eq!(
            cfg.parse("-1").unwrap_err(),
            "cfg -1 is out of range; use a value from 0 to 100 (typical: 7.5, or 0 for turbo models)"
        );
        assert_eq!(
            cfg.parse("x").unwrap_err(),
            "expected a number from 0 to 100 (typical: 7.5, or 0 for turbo models)"
        );
        assert!(cfg.parse("NaN").is_err());
        let steps = field("steps").unwrap();
        assert_eq!(steps.parse("4"), Ok(Value::Whole(4)));
        assert!(steps
            .parse("0")
            .unwrap_err()
            .contains("steps 0 is out of range"));
        let width = field("width").unwrap();
        assert!(width
            .parse("0")
            .unwrap_err()
            .contains("width 0 is out of range"));
        assert!(width.parse("8200").is_err());
        assert_eq!(
            field("sampler").unwrap().parse("ddim"),
            Ok(Value::Sampler(SamplerKind::Ddim))
        );
        assert!(field("seed").unwrap().parse("-1").is_err());
        assert_eq!(
            field("truncate_prompt").unwrap().parse("true"),
            Ok(Value::Flag(true))
        );
    }
}
