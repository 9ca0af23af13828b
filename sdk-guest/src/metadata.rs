//! Typed access to a component's Dapr metadata (`spec.metadata`).

use crate::Error;
use std::str::FromStr;
use std::time::Duration;

/// The `name`/`value` pairs of the component's YAML, secrets resolved.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pairs: Vec<(String, String)>,
}

impl From<Vec<(String, String)>> for Metadata {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Metadata { pairs }
    }
}

impl Metadata {
    /// Metadata from literal pairs, as tests and defaults write them.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<Vec<_>>()
            .into()
    }

    /// The value of `name`, matched case-insensitively as Dapr does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, or an `invalid-argument` error naming it.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| Error::InvalidArgument(format!("metadata field `{name}` is required")))
    }

    /// `name` parsed as `T`, `default` when absent, an error naming the field
    /// when present but malformed.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|err| {
                Error::InvalidArgument(format!(
                    "metadata field `{name}`: `{raw}` is invalid: {err}"
                ))
            }),
        }
    }

    /// `name` as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(Error::InvalidArgument(format!(
                "metadata field `{name}`: `{v}` is not a boolean"
            ))),
        }
    }
}

/// Parses a duration as Dapr's metadata decoder does: Go's syntax (`500ms`,
/// `30s`, `1m30s`, `2h`) or a bare integer counting milliseconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(millis) = raw.parse::<u64>() {
        return Some(Duration::from_millis(millis));
    }
    const UNITS: [(&str, f64); 7] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    let mut rest = raw;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        // Longest unit first, so `ms` is not read as `m` followed by `s`.
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        seconds += value * scale;
        rest = &rest[unit.len()..];
    }
    (!raw.is_empty() && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
}

impl Metadata {
    /// `name` as a duration (see [`parse_duration`]), `default` when absent,
    /// an error naming the field when malformed.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, Error> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(raw) => parse_duration(raw).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "metadata field `{name}`: `{raw}` is not a duration (like `30s` or `500ms`)"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::from_pairs(pairs)
    }

    #[test]
    fn lookups_are_case_insensitive_and_typed() {
        let m = md(&[
            ("redisHost", "a:1"),
            ("redisDB", "3"),
            ("enableTLS", "true"),
        ]);
        assert_eq!(m.get("redishost"), Some("a:1"));
        assert_eq!(m.parse_or("redisDB", 0u32).ok(), Some(3));
        assert_eq!(m.parse_or("missing", 7u32).ok(), Some(7));
        assert_eq!(m.flag("enableTLS", false).ok(), Some(true));
        assert!(m.require("missing").is_err());
        assert!(md(&[("redisDB", "x")]).parse_or("redisDB", 0u32).is_err());
    }

    #[test]
    fn durations_read_go_syntax_and_bare_milliseconds() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("30s", Some(Duration::from_secs(30))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2h", Some(Duration::from_secs(7200))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("250", Some(Duration::from_millis(250))),
            ("", None),
            ("s", None),
            ("10", Some(Duration::from_millis(10))),
            ("10x", None),
            ("-5s", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_duration(raw), *expected, "{raw:?}");
        }
        let m = md(&[("ackWait", "2m"), ("bad", "soon")]);
        assert_eq!(
            m.duration("ackWait", Duration::ZERO).ok(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            m.duration("missing", Duration::from_secs(1)).ok(),
            Some(Duration::from_secs(1))
        );
        assert!(m.duration("bad", Duration::ZERO).is_err());
    }
}
