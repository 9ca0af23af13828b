//! The `sort` list of a query: parsing it and ordering two documents.

use super::compare;
use super::path::Path;
use serde_json::Value;
use std::cmp::Ordering;

/// One `{"key": "...", "order": "ASC" | "DESC"}` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    path: Path,
    descending: bool,
}

impl SortKey {
    /// Parses the `sort` array.
    pub(crate) fn parse_list(raw: &Value) -> Result<Vec<SortKey>, String> {
        raw.as_array()
            .ok_or("`sort` must be an array")?
            .iter()
            .map(SortKey::parse)
            .collect()
    }

    fn parse(raw: &Value) -> Result<SortKey, String> {
        let entry = raw
            .as_object()
            .ok_or("each `sort` entry must be an object")?;
        let key = entry
            .get("key")
            .and_then(Value::as_str)
            .ok_or("each `sort` entry needs a string `key`")?;
        let descending = match entry.get("order") {
            None | Some(Value::Null) => false,
            Some(Value::String(order)) if order.eq_ignore_ascii_case("ASC") => false,
            Some(Value::String(order)) if order.eq_ignore_ascii_case("DESC") => true,
            Some(other) => {
                return Err(format!(
                    "sort order {other} is neither \"ASC\" nor \"DESC\""
                ));
            }
        };
        Ok(SortKey {
            path: Path::parse(key)?,
            descending,
        })
    }
}

/// Orders two documents by the sort keys in turn. A document lacking a key's
/// path goes after those that have it, whichever the direction.
pub(crate) fn compare(keys: &[SortKey], a: &Value, b: &Value) -> Ordering {
    keys.iter()
        .map(|key| match (key.path.lookup(a), key.path.lookup(b)) {
            (Some(x), Some(y)) if key.descending => compare::total(y, x),
            (Some(x), Some(y)) => compare::total(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_sort_is_rejected() {
        let cases = [
            json!({"key": "a"}),
            json!(["a"]),
            json!([{"order": "ASC"}]),
            json!([{"key": 3}]),
            json!([{"key": "a", "order": "UP"}]),
            json!([{"key": "a", "order": 1}]),
            json!([{"key": ""}]),
        ];
        for raw in cases {
            assert!(
                SortKey::parse_list(&raw).is_err(),
                "{raw} should be rejected"
            );
        }
    }

    #[test]
    fn ordering_table() {
        let keys = |raw: Value| SortKey::parse_list(&raw).expect("valid sort");
        let cases = [
            (
                json!([{"key": "n"}]),
                json!({"n": 1}),
                json!({"n": 2}),
                Ordering::Less,
            ),
            (
                json!([{"key": "n", "order": "DESC"}]),
                json!({"n": 1}),
                json!({"n": 2}),
                Ordering::Greater,
            ),
            (
                json!([{"key": "n"}]),
                json!({"n": 1}),
                json!({}),
                Ordering::Less,
            ),
            (
                json!([{"key": "n", "order": "desc"}]),
                json!({"n": 1}),
                json!({}),
                Ordering::Less,
            ),
            (
                json!([{"key": "a"}, {"key": "b", "order": "DESC"}]),
                json!({"a": 1, "b": 1}),
                json!({"a": 1, "b": 2}),
                Ordering::Greater,
            ),
            (json!([]), json!({"n": 1}), json!({"n": 2}), Ordering::Equal),
        ];
        for (sort, a, b, want) in cases {
            assert_eq!(
                compare(&keys(sort.clone()), &a, &b),
                want,
                "{sort}: {a} vs {b}"
            );
        }
    }
}
