//! The `page` part of a query: a limit and an offset carried in an opaque token.

use serde_json::Value;

/// Which slice of the sorted matches to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    /// At most this many results; `None` (Dapr's `0` or absent) for all.
    limit: Option<usize>,
    /// Where the previous page ended, from the token.
    offset: usize,
}

impl Page {
    /// Parses `{"limit": N, "token": "..."}`; both members are optional.
    pub(crate) fn parse(raw: &Value) -> Result<Page, String> {
        let page = raw.as_object().ok_or("`page` must be an object")?;
        let limit = match page.get("limit") {
            None | Some(Value::Null) => None,
            Some(raw) => match raw.as_u64() {
                Some(0) => None,
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => return Err(format!("page limit {raw} is not a whole number >= 0")),
            },
        };
        let offset = match page.get("token") {
            None | Some(Value::Null) => 0,
            Some(Value::String(token)) if token.is_empty() => 0,
            Some(Value::String(token)) => token
                .parse()
                .map_err(|_| format!("page token `{token}` was not issued by this store"))?,
            Some(other) => return Err(format!("page token {other} must be a string")),
        };
        Ok(Page { limit, offset })
    }

    /// Keeps this page of `sorted`, and the token of the next one if any remain.
    pub(crate) fn cut<T>(&self, sorted: Vec<T>) -> (Vec<T>, Option<String>) {
        let total = sorted.len();
        let start = self.offset.min(total);
        let end = match self.limit {
            Some(limit) => start.saturating_add(limit).min(total),
            None => total,
        };
        let token = (end < total).then(|| end.to_string());
        let page = sorted.into_iter().skip(start).take(end - start).collect();
        (page, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_table() {
        let ok = [
            (json!({}), None, 0),
            (json!({"limit": 0}), None, 0),
            (json!({"limit": 3}), Some(3), 0),
            (json!({"limit": 3, "token": "6"}), Some(3), 6),
            (json!({"token": ""}), None, 0),
        ];
        for (raw, limit, offset) in ok {
            assert_eq!(Page::parse(&raw), Ok(Page { limit, offset }), "{raw}");
        }
        let bad = [
            json!([]),
            json!({"limit": -1}),
            json!({"limit": 1.5}),
            json!({"limit": "3"}),
            json!({"token": "abc"}),
            json!({"token": "-1"}),
            json!({"token": 3}),
        ];
        for raw in bad {
            assert!(Page::parse(&raw).is_err(), "{raw} should be rejected");
        }
    }

    #[test]
    fn cut_table() {
        let items: Vec<u32> = (0..5).collect();
        let cases = [
            (None, 0, vec![0, 1, 2, 3, 4], None),
            (Some(2), 0, vec![0, 1], Some("2")),
            (Some(2), 2, vec![2, 3], Some("4")),
            (Some(2), 4, vec![4], None),
            (Some(5), 0, vec![0, 1, 2, 3, 4], None),
            (Some(2), 9, vec![], None),
            (None, 3, vec![3, 4], None),
        ];
        for (limit, offset, want, token) in cases {
            let (got, next) = Page { limit, offset }.cut(items.clone());
            assert_eq!(got, want, "limit {limit:?} offset {offset}");
            assert_eq!(next.as_deref(), token, "limit {limit:?} offset {offset}");
        }
    }
}
