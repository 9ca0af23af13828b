//! Dapr's state query language, evaluated inside a store that has no query
//! engine of its own (the in-memory and redb stores).
//!
//! A query is JSON with three optional parts, as Dapr's alpha query API
//! defines them:
//!
//! - `filter`: a tree of `EQ`, `NEQ`, `GT`, `GTE`, `LT`, `LTE`, `IN` over dotted
//!   paths into the stored JSON value (`{"EQ": {"person.org": "A"}}`), joined
//!   by `AND` / `OR` (each with at least two operands);
//! - `sort`: `[{"key": "state", "order": "DESC"}]`, ascending by default;
//! - `page`: `{"limit": 10, "token": "20"}`; the token is an opaque offset this
//!   module issues.
//!
//! Rules where Dapr leaves room (documented so stores agree):
//! - values that are not JSON are never part of a result;
//! - a comparison on a path that is absent is false, `NEQ` included;
//! - numbers compare as numbers (`1 == 1.0`); ordering operators compare
//!   numbers with numbers and strings with strings and are false otherwise;
//! - `sort` orders by kind first (null, bool, number, string, array, object),
//!   puts items lacking the path last in either direction, and breaks ties by
//!   key, so pages are stable between calls.

mod compare;
mod filter;
mod page;
mod path;
mod sort;

use crate::state::{QueryItem, QueryResponse};
use crate::{Error, Result};
use filter::Filter;
use page::Page;
use serde_json::Value;
use sort::SortKey;
use std::str::FromStr;

/// A parsed, validated Dapr state query, ready to run over a store's items.
/// Parsing up front lets a store reject a malformed query before it scans.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    filter: Option<Filter>,
    sort: Vec<SortKey>,
    page: Page,
}

impl Query {
    /// Parses the JSON text of a query; anything malformed is an
    /// `invalid-argument` error saying what is wrong, as Dapr answers 400.
    pub fn parse(text: &str) -> Result<Query> {
        let document: Value = serde_json::from_str(text)
            .map_err(|err| invalid(format!("the query is not JSON: {err}")))?;
        let Value::Object(parts) = document else {
            return Err(invalid("the query must be a JSON object"));
        };
        let filter = match parts.get("filter") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) if map.is_empty() => None,
            Some(raw) => Some(Filter::parse(raw).map_err(invalid)?),
        };
        let sort = match parts.get("sort") {
            None | Some(Value::Null) => Vec::new(),
            Some(raw) => SortKey::parse_list(raw).map_err(invalid)?,
        };
        let page = match parts.get("page") {
            None | Some(Value::Null) => Page::default(),
            Some(raw) => Page::parse(raw).map_err(invalid)?,
        };
        Ok(Query { filter, sort, page })
    }

    /// Filters, sorts and pages `items` (already narrowed to the app's key
    /// prefix and stripped of expired entries by the store).
    pub fn run(&self, items: impl IntoIterator<Item = QueryItem>) -> QueryResponse {
        let mut matches: Vec<(QueryItem, Value)> = items
            .into_iter()
            .filter_map(|item| {
                let document = serde_json::from_slice::<Value>(&item.value).ok()?;
                let wanted = self.filter.as_ref().is_none_or(|f| f.matches(&document));
                wanted.then_some((item, document))
            })
            .collect();
        matches.sort_by(|(a, a_doc), (b, b_doc)| {
            sort::compare(&self.sort, a_doc, b_doc).then_with(|| a.key.cmp(&b.key))
        });
        let (results, token) = self.page.cut(matches);
        QueryResponse {
            results: results.into_iter().map(|(item, _)| item).collect(),
            token,
        }
    }
}

impl FromStr for Query {
    type Err = Error;

    fn from_str(text: &str) -> Result<Query> {
        Query::parse(text)
    }
}

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("invalid query: {message}"))
}

#[cfg(test)]
mod tests;
