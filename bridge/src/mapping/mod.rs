//! Pure translation between control values and target values.
//!
//! A [`Mapping`] ties one OSC address to one catalog target. Incoming values are clamped to the
//! mapping's [`Range`], scaled linearly onto the target's [`Bounds`] (which come from the gateway's
//! `Welcome`) and rounded to the target's step; [`Mapping::to_osc`] is the inverse used for
//! feedback. Nothing here does I/O, so every rule is unit-tested below.

use std::collections::HashMap;

use rosc::OscType;

/// What can go wrong turning a control value into a target value, or back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The OSC message carried no argument at all.
    #[error("the message has no argument")]
    NoArgument,
    /// The first OSC argument is of a type that is not a number or a boolean.
    #[error("unsupported argument type {0} (expected int, float, double or bool)")]
    UnsupportedArgument(&'static str),
    /// The value is NaN or infinite.
    #[error("value {0} is not a finite number")]
    NotFinite(f64),
    /// A range whose lower bound is not below its upper bound, or not finite.
    #[error("lower bound must be below upper bound (got [{lo}, {hi}])")]
    EmptyRange {
        /// The lower bound given.
        lo: f64,
        /// The upper bound given.
        hi: f64,
    },
    /// Target bounds from the gateway that cannot be mapped onto.
    #[error("unusable target bounds min {min}, max {max}, step {step}")]
    BadBounds {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
        /// Granularity.
        step: f64,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The values a control sends, e.g. `[0, 1]` for TouchOSC faders. Invariant: finite, `lo < hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    lo: f64,
    hi: f64,
}

impl Range {
    /// A range from `lo` to `hi`; refuses empty, inverted or non-finite ranges.
    pub fn new(lo: f64, hi: f64) -> Result<Range> {
        if lo.is_finite() && hi.is_finite() && lo < hi {
            Ok(Range { lo, hi })
        } else {
            Err(Error::EmptyRange { lo, hi })
        }
    }

    /// The lower end.
    pub fn lo(&self) -> f64 {
        self.lo
    }

    /// The upper end.
    pub fn hi(&self) -> f64 {
        self.hi
    }
}

impl Default for Range {
    /// `[0, 1]`, what TouchOSC faders send.
    fn default() -> Range {
        Range { lo: 0.0, hi: 1.0 }
    }
}

/// The values a target accepts, as announced by the gateway. Invariant: finite, `min <= max`,
/// `step >= 0` (0 means continuous).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    min: f64,
    max: f64,
    step: f64,
}

impl Bounds {
    /// Checks the gateway's numbers before anything is scaled onto them.
    pub fn new(min: f64, max: f64, step: f64) -> Result<Bounds> {
        let finite = min.is_finite() && max.is_finite() && step.is_finite();
        if finite && min <= max && step >= 0.0 {
            Ok(Bounds { min, max, step })
        } else {
            Err(Error::BadBounds { min, max, step })
        }
    }

    /// `max - min`.
    pub fn span(&self) -> f64 {
        self.max - self.min
    }

    /// One step as a fraction of `max - min` (0 when continuous or when `min == max`).
    pub fn fraction_of_step(&self) -> f64 {
        if self.max > self.min && self.step > 0.0 {
            self.step / (self.max - self.min)
        } else {
            0.0
        }
    }
}

impl TryFrom<&kubeknobs_proto::v1::Bounds> for Bounds {
    type Error = Error;

    fn try_from(b: &kubeknobs_proto::v1::Bounds) -> Result<Bounds> {
        Bounds::new(b.min, b.max, b.step)
    }
}

/// One OSC control wired to one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The OSC address the control sends, e.g. `/1/fader1`.
    pub address: String,
    /// The gateway catalog name of the target, e.g. `web`.
    pub target: String,
    /// The values the control sends.
    pub range: Range,
    /// An OSC address that receives a text label such as `web 7/10`, if any.
    pub label: Option<String>,
}

impl Mapping {
    /// Scales a control value onto the target: clamp to the range, scale linearly onto the
    /// bounds, round to the step. `/1/fader1 0.5` with `[0, 1]` onto `0..20 step 1` gives 10.
    pub fn to_target(&self, value: f64, bounds: &Bounds) -> Result<f64> {
        if !value.is_finite() {
            return Err(Error::NotFinite(value));
        }
        let Range { lo, hi } = self.range;
        let t = (value.clamp(lo, hi) - lo) / (hi - lo);
        let mut scaled = bounds.min + t * (bounds.max - bounds.min);
        if bounds.step > 0.0 {
            scaled = bounds.min + ((scaled - bounds.min) / bounds.step).round() * bounds.step;
        }
        Ok(scaled.clamp(bounds.min, bounds.max))
    }

    /// The inverse of [`Mapping::to_target`] for feedback: a target value as a control value
    /// within the mapping's range (values outside the bounds are clamped).
    pub fn to_osc(&self, value: f64, bounds: &Bounds) -> Result<f64> {
        if !value.is_finite() {
            return Err(Error::NotFinite(value));
        }
        let span = bounds.max - bounds.min;
        let t = if span > 0.0 {
            (value.clamp(bounds.min, bounds.max) - bounds.min) / span
        } else {
            0.0
        };
        Ok(self.range.lo + t * (self.range.hi - self.range.lo))
    }
}

/// Reads the first OSC argument as a number. Ints, floats and doubles are taken as they are;
/// booleans (TouchOSC buttons, OSC `T`/`F`) map to the ends of `range`.
pub fn arg_value(args: &[OscType], range: &Range) -> Result<f64> {
    let value = match args.first().ok_or(Error::NoArgument)? {
        OscType::Int(v) => f64::from(*v),
        // i64 → f64 loses precision only beyond 2^53, far outside any control's range.
        OscType::Long(v) => *v as f64,
        OscType::Float(v) => f64::from(*v),
        OscType::Double(v) => *v,
        OscType::Bool(true) => range.hi,
        OscType::Bool(false) => range.lo,
        other => return Err(Error::UnsupportedArgument(type_name(other))),
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NotFinite(value))
    }
}

fn type_name(arg: &OscType) -> &'static str {
    match arg {
        OscType::Int(_) => "int",
        OscType::Float(_) => "float",
        OscType::String(_) => "string",
        OscType::Blob(_) => "blob",
        OscType::Time(_) => "time",
        OscType::Long(_) => "long",
        OscType::Double(_) => "double",
        OscType::Char(_) => "char",
        OscType::Color(_) => "color",
        OscType::Midi(_) => "midi",
        OscType::Bool(_) => "bool",
        OscType::Array(_) => "array",
        OscType::Nil => "nil",
        OscType::Inf => "inf",
    }
}

/// All mappings of a bridge, indexed by OSC address (addresses are unique, config checks that).
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    list: Vec<Mapping>,
    by_address: HashMap<String, usize>,
}

impl Mappings {
    /// Indexes `list`; on a duplicate address the first mapping wins.
    pub fn new(list: Vec<Mapping>) -> Mappings {
        let mut by_address = HashMap::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            by_address.entry(m.address.clone()).or_insert(i);
        }
        Mappings { list, by_address }
    }

    /// The mapping for an incoming OSC address.
    pub fn by_address(&self, address: &str) -> Option<&Mapping> {
        self.by_address.get(address).map(|&i| &self.list[i])
    }

    /// Every mapping that drives `target`.
    pub fn for_target<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a Mapping> + 'a {
        self.list.iter().filter(move |m| m.target == target)
    }

    /// All mappings in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.list.iter()
    }

    /// How many mappings there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests;
