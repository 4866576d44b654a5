//! A benchmark's size, read from the environment: one number in a range, or a default, and a
//! clear refusal of anything else (the load generator, the footprint, OSC relay and sweep
//! benches all take their knobs this way).

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// The number in environment variable `key`, or `default` when it is unset. Panics, naming the
/// variable, its text and the range, when it is not a number in `range`.
pub fn from_env<T>(key: &str, range: RangeInclusive<T>, default: T) -> T
where
    T: FromStr + PartialOrd + Display,
{
    read(key, std::env::var(key).ok().as_deref(), range, default)
}

/// [`from_env`] of the variable's `text`, if set.
fn read<T>(key: &str, text: Option<&str>, range: RangeInclusive<T>, default: T) -> T
where
    T: FromStr + PartialOrd + Display,
{
    let Some(text) = text else { return default };
    text.trim()
        .parse::<T>()
        .ok()
        .filter(|value| range.contains(value))
        .unwrap_or_else(|| {
            panic!(
                "{key}={text:?}: want a number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn unset_is_the_default_and_a_number_in_range_is_taken() {
        assert_eq!(read("K", None, 1..=10, 7u64), 7);
        assert_eq!(read("K", Some(" 9 "), 1..=10, 7u64), 9);
        assert_eq!(read("K", Some("0.5"), 0.1..=2.0, 1.0), 0.5);
    }

    #[test]
    #[should_panic(expected = "KUBEKNOBS_X=\"11\": want a number from 1 to 10")]
    fn a_number_out_of_range_is_refused_by_name() {
        read("KUBEKNOBS_X", Some("11"), 1..=10, 7u64);
    }

    #[test]
    #[should_panic(expected = "KUBEKNOBS_X=\"ten\": want a number from 1 to 10")]
    fn text_that_is_no_number_is_refused_by_name() {
        read("KUBEKNOBS_X", Some("ten"), 1..=10, 7u64);
    }
}
