//! How two JSON values compare, for filters and for sorting.

use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Equality as `EQ` and `IN` mean it: numbers by value (`1 == 1.0`),
/// everything else structurally.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Order as `GT`/`GTE`/`LT`/`LTE` mean it: only numbers with numbers and
/// strings with strings have one; anything else makes the comparison false.
pub(crate) fn ordered(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A total order for sorting: by kind first, then by value within a kind.
pub(crate) fn total(a: &Value, b: &Value) -> Ordering {
    kind_rank(a).cmp(&kind_rank(b)).then_with(|| match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => numbers(x, y).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        // Arrays and objects have no natural order; their text gives a stable one.
        _ => a.to_string().cmp(&b.to_string()),
    })
}

fn kind_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Integers compare exactly; anything involving a fraction goes through f64.
fn numbers(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_table() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(1), json!(2), false),
            (json!("a"), json!("a"), true),
            (json!("1"), json!(1), false),
            (json!(null), json!(null), true),
            (json!([1, 2]), json!([1, 2]), true),
            (json!({"a": 1}), json!({"a": 1}), true),
            (json!(u64::MAX), json!(u64::MAX), true),
            (json!(-1), json!(u64::MAX), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(equal(&a, &b), want, "{a} == {b}");
        }
    }

    #[test]
    fn ordering_table() {
        let cases = [
            (json!(1), json!(2), Some(Ordering::Less)),
            (json!(2.5), json!(2), Some(Ordering::Greater)),
            (json!("b"), json!("a"), Some(Ordering::Greater)),
            (json!("10"), json!(9), None),
            (json!(true), json!(false), None),
            (json!(null), json!(1), None),
        ];
        for (a, b, want) in cases {
            assert_eq!(ordered(&a, &b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn total_order_ranks_kinds_then_values() {
        let mut values = vec![
            json!({"a": 1}),
            json!("b"),
            json!([1]),
            json!(2),
            json!(true),
            json!(null),
            json!("a"),
            json!(1.5),
            json!(false),
        ];
        values.sort_by(total);
        let want = vec![
            json!(null),
            json!(false),
            json!(true),
            json!(1.5),
            json!(2),
            json!("a"),
            json!("b"),
            json!([1]),
            json!({"a": 1}),
        ];
        assert_eq!(values, want);
    }
}
