//! Typed access to a component's Dapr metadata (`spec.metadata`).

use crate::Error;
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into()
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
}
