//! What both programs' TOML config files share: deserializing with the dotted path of the field
//! a serde error is about (`osc.mappings[1].range`) and where in the text it is, and byte offsets
//! turned into line numbers. Each program wraps a [`TomlError`] into its own config error, which
//! names the file, the line and the field.
//!
//! A field that takes one of a closed set of names (`curve = "log"`) is an enum that is
//! [`Named`]: its one list of values with their names serves to read it ([`named`]), to say
//! which names are valid when one is not, and to print it.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};

/// Why TOML text does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// Byte offset of the offending text, when toml knows it.
    pub at: Option<usize>,
    /// Dotted path of the field, e.g. `osc.mappings[1].range`; empty for broken TOML and for
    /// errors about the document as a whole.
    pub field: String,
    /// What is wrong, as toml or serde says it.
    pub message: String,
}

/// Deserializes TOML `text` into `T`, keeping the path of the field an error is about.
pub fn deserialize<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    let de = toml::Deserializer::parse(text).map_err(|err| TomlError {
        at: err.span().map(|span| span.start),
        field: String::new(),
        message: err.message().trim().to_owned(),
    })?;
    serde_path_to_error::deserialize(de).map_err(|err| {
        // `Spanned` adds a private segment to the path; it means nothing to an admin.
        let field = err
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let err = err.into_inner();
        // serde says "variant" for a name of a closed set; an admin wrote a value.
        let message = err
            .message()
            .trim()
            .replacen("unknown variant", "unknown value", 1);
        TomlError {
            at: err.span().map(|span| span.start),
            field: if field == "." { String::new() } else { field },
            message,
        }
    })
}

/// A value from a closed set a config field takes, each with its name in the file.
pub trait Named: Copy + PartialEq + 'static {
    /// Every value with its name: the one list of them.
    const NAMES: &'static [(&'static str, Self)];

    /// This value's name in the file.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("", |(name, _)| name)
    }
}

/// Reads a [`Named`] value from its name (surrounding spaces and case do not matter); for the
/// value's `Deserialize`. Any other text is refused with the valid names: `must be one of linear,
/// log`.
pub fn named<'de, D: Deserializer<'de>, T: Named>(deserializer: D) -> Result<T, D::Error> {
    let text = String::deserialize(deserializer)?;
    let key = text.trim().to_ascii_lowercase();
    T::NAMES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = T::NAMES.iter().map(|(name, _)| *name).collect();
            D::Error::custom(format!("must be one of {}", names.join(", ")))
        })
}

/// 1-based line number of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        osc: Osc,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Osc {
        mappings: Vec<toml::Spanned<Mapping>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Mapping {
        range: toml::Spanned<[f64; 2]>,
    }

    fn error(text: &str) -> (Option<usize>, String, String) {
        let err = deserialize::<Doc>(text).expect_err("refused");
        (err.at.map(|at| line_of(text, at)), err.field, err.message)
    }

    #[test]
    fn errors_name_the_field_and_its_line() {
        let text = "[osc]\n[[osc.mappings]]\nrange = [0, 1]\n[[osc.mappings]]\nrange = \"wide\"\n";
        let (line, field, message) = error(text);
        assert_eq!((line, field.as_str()), (Some(5), "osc.mappings[1].range"));
        assert!(message.starts_with("invalid type"), "{message}");
        let (line, field, _) = error("[osc]\nmappings = []\nextra = 1\n");
        assert_eq!((line, field.as_str()), (Some(3), "osc.extra"));
    }

    #[test]
    fn broken_toml_has_a_line_and_no_field() {
        let (line, field, _) = error("[osc]\nmappings = = 1\n");
        assert_eq!((line, field.as_str()), (Some(2), ""));
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Curve {
        Linear,
        Log,
    }

    impl Named for Curve {
        const NAMES: &'static [(&'static str, Curve)] =
            &[("linear", Curve::Linear), ("log", Curve::Log)];
    }

    impl<'de> Deserialize<'de> for Curve {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Curve, D::Error> {
            named(d)
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Knob {
        curve: toml::Spanned<Curve>,
    }

    #[test]
    fn named_values_are_read_by_name_and_others_refused_with_the_names() {
        let knob: Knob = deserialize("curve = \" Log \"\n").expect("a name");
        assert_eq!(*knob.curve.get_ref(), Curve::Log);
        assert_eq!(Curve::Linear.name(), "linear");
        let text = "\ncurve = \"loud\"\n";
        let err = deserialize::<Knob>(text).expect_err("not a name");
        assert_eq!(err.field, "curve");
        assert_eq!(err.at.map(|at| line_of(text, at)), Some(2));
        assert_eq!(err.message, "must be one of linear, log");
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
