//! The `filter` tree of a query: parsing it and matching a document.

use super::compare;
use super::path::Path;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// One node of the filter tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    /// `EQ`, `NEQ`, `GT`, `GTE`, `LT`, `LTE`: the value at a path against a constant.
    Compare { op: Op, path: Path, value: Value },
    /// `IN`: the value at a path equals one of the constants.
    In { path: Path, values: Vec<Value> },
    /// `AND`: every operand matches.
    And(Vec<Filter>),
    /// `OR`: at least one operand matches.
    Or(Vec<Filter>),
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Filter {
    /// Parses one node: an object with exactly one operator as its member.
    pub(crate) fn parse(raw: &Value) -> Result<Filter, String> {
        let node = raw.as_object().ok_or("a filter must be an object")?;
        let mut members = node.iter();
        let (Some((operator, operand)), None) = (members.next(), members.next()) else {
            return Err(format!(
                "a filter must have exactly one operator, found {}",
                node.len()
            ));
        };
        let op = match operator.as_str() {
            "EQ" => Op::Eq,
            "NEQ" => Op::Neq,
            "GT" => Op::Gt,
            "GTE" => Op::Gte,
            "LT" => Op::Lt,
            "LTE" => Op::Lte,
            "IN" => {
                let (path, values) = single_pair(operator, operand)?;
                let values = values
                    .as_array()
                    .ok_or("the value of an IN filter must be an array")?;
                return Ok(Filter::In {
                    path,
                    values: values.clone(),
                });
            }
            "AND" => return Ok(Filter::And(operands(operator, operand)?)),
            "OR" => return Ok(Filter::Or(operands(operator, operand)?)),
            other => return Err(format!("unsupported filter operator `{other}`")),
        };
        let (path, value) = single_pair(operator, operand)?;
        Ok(Filter::Compare {
            op,
            path,
            value: value.clone(),
        })
    }

    /// Whether `document` satisfies this node.
    pub(crate) fn matches(&self, document: &Value) -> bool {
        match self {
            Filter::Compare { op, path, value } => path
                .lookup(document)
                .is_some_and(|found| op.holds(found, value)),
            Filter::In { path, values } => path
                .lookup(document)
                .is_some_and(|found| values.iter().any(|v| compare::equal(found, v))),
            Filter::And(all) => all.iter().all(|f| f.matches(document)),
            Filter::Or(any) => any.iter().any(|f| f.matches(document)),
        }
    }
}

impl Op {
    fn holds(self, found: &Value, wanted: &Value) -> bool {
        let order = || compare::ordered(found, wanted);
        match self {
            Op::Eq => compare::equal(found, wanted),
            Op::Neq => !compare::equal(found, wanted),
            Op::Gt => order() == Some(Ordering::Greater),
            Op::Gte => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => order() == Some(Ordering::Less),
            Op::Lte => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        }
    }
}

/// The `{"path": value}` operand of a comparison or `IN`.
fn single_pair<'v>(operator: &str, operand: &'v Value) -> Result<(Path, &'v Value), String> {
    let pair: &Map<String, Value> = operand
        .as_object()
        .ok_or_else(|| format!("the operand of {operator} must be an object"))?;
    let mut members = pair.iter();
    match (members.next(), members.next()) {
        (Some((key, value)), None) => Ok((Path::parse(key)?, value)),
        _ => Err(format!(
            "the operand of {operator} must have exactly one key/value pair"
        )),
    }
}

/// The array operand of `AND` / `OR`, which Dapr requires to hold two or more filters.
fn operands(operator: &str, operand: &Value) -> Result<Vec<Filter>, String> {
    let list = operand
        .as_array()
        .ok_or_else(|| format!("the operand of {operator} must be an array"))?;
    if list.len() < 2 {
        return Err(format!("{operator} must have at least two operands"));
    }
    list.iter().map(Filter::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_filters_are_rejected_with_a_reason() {
        let cases = [
            (json!([]), "must be an object"),
            (json!({}), "exactly one operator"),
            (
                json!({"EQ": {"a": 1}, "NEQ": {"a": 2}}),
                "exactly one operator",
            ),
            (
                json!({"LIKE": {"a": 1}}),
                "unsupported filter operator `LIKE`",
            ),
            (json!({"eq": {"a": 1}}), "unsupported filter operator `eq`"),
            (json!({"EQ": 1}), "operand of EQ must be an object"),
            (json!({"EQ": {}}), "exactly one key/value pair"),
            (
                json!({"GT": {"a": 1, "b": 2}}),
                "exactly one key/value pair",
            ),
            (json!({"EQ": {"a..b": 1}}), "not a valid key path"),
            (json!({"IN": {"a": 1}}), "IN filter must be an array"),
            (
                json!({"AND": {"EQ": {"a": 1}}}),
                "operand of AND must be an array",
            ),
            (json!({"OR": [{"EQ": {"a": 1}}]}), "at least two operands"),
            (
                json!({"AND": [{"EQ": {"a": 1}}, {"BAD": {}}]}),
                "unsupported",
            ),
        ];
        for (raw, reason) in cases {
            match Filter::parse(&raw) {
                Ok(parsed) => panic!("{raw} parsed as {parsed:?}"),
                Err(err) => assert!(err.contains(reason), "{raw}: `{err}` lacks `{reason}`"),
            }
        }
    }

    #[test]
    fn matching_table() {
        let doc = json!({
            "person": {"org": "Dev Ops", "id": 1036},
            "city": "Seattle",
            "state": "WA",
            "score": 7.5,
            "tags": ["a"]
        });
        let cases = [
            (json!({"EQ": {"state": "WA"}}), true),
            (json!({"EQ": {"state": "CA"}}), false),
            (json!({"EQ": {"person.org": "Dev Ops"}}), true),
            (json!({"EQ": {"person.id": 1036.0}}), true),
            (json!({"EQ": {"tags": ["a"]}}), true),
            (json!({"EQ": {"missing": null}}), false),
            (json!({"NEQ": {"state": "CA"}}), true),
            (json!({"NEQ": {"state": "WA"}}), false),
            (json!({"NEQ": {"missing": "x"}}), false),
            (json!({"GT": {"person.id": 1000}}), true),
            (json!({"GT": {"person.id": 1036}}), false),
            (json!({"GTE": {"person.id": 1036}}), true),
            (json!({"LT": {"score": 8}}), true),
            (json!({"LTE": {"score": 7.5}}), true),
            (json!({"LT": {"score": 7}}), false),
            (json!({"GT": {"city": "S"}}), true),
            (json!({"GT": {"city": 1}}), false),
            (json!({"LT": {"missing": 1}}), false),
            (json!({"IN": {"state": ["CA", "WA"]}}), true),
            (json!({"IN": {"state": ["CA", "OR"]}}), false),
            (json!({"IN": {"state": []}}), false),
            (
                json!({"AND": [{"EQ": {"state": "WA"}}, {"EQ": {"city": "Seattle"}}]}),
                true,
            ),
            (
                json!({"AND": [{"EQ": {"state": "WA"}}, {"EQ": {"city": "Spokane"}}]}),
                false,
            ),
            (
                json!({"OR": [{"EQ": {"state": "CA"}}, {"EQ": {"city": "Seattle"}}]}),
                true,
            ),
            (
                json!({"OR": [{"EQ": {"state": "CA"}}, {"EQ": {"city": "Spokane"}}]}),
                false,
            ),
            (
                json!({"OR": [
                    {"EQ": {"state": "CA"}},
                    {"AND": [{"EQ": {"person.org": "Dev Ops"}}, {"GT": {"score": 5}}]}
                ]}),
                true,
            ),
        ];
        for (raw, want) in cases {
            let filter = Filter::parse(&raw).unwrap_or_else(|err| panic!("{raw}: {err}"));
            assert_eq!(filter.matches(&doc), want, "{raw}");
        }
    }
}
