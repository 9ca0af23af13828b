//! Routing rules over CloudEvents as the delivery loop sees them.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::blocks::pubsub::subscription::RouteRule;
use serde_json::json;

fn table(rules: &[(&str, &str)], default: Option<&str>) -> RouteTable {
    let routes = Routes {
        rules: rules
            .iter()
            .map(|(condition, path)| RouteRule {
                condition: (*condition).into(),
                path: (*path).into(),
            })
            .collect(),
        default: default.map(str::to_owned),
    };
    RouteTable::compile(&routes).unwrap_or_else(|error| panic!("{error}"))
}

/// A CloudEvent as Dapr wraps a JSON payload.
fn event(kind: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": "e1",
        "type": kind,
        "source": "billing/orders",
        "topic": "orders",
        "pubsubname": "pubsub",
        "datacontenttype": "application/json",
        "data": data,
    })
}

#[test]
fn the_first_true_rule_wins_in_order() {
    let routes = table(
        &[
            (r#"event.type == "widget""#, "/widgets"),
            (r#"event.type.startsWith("wid")"#, "/wid-prefix"),
            ("true", "/always"),
        ],
        Some("/default"),
    );
    assert_eq!(routes.route(&event("widget", json!({}))), Some("/widgets"));
    assert_eq!(
        routes.route(&event("widgetry", json!({}))),
        Some("/wid-prefix")
    );
    assert_eq!(routes.route(&event("gadget", json!({}))), Some("/always"));
}

#[test]
fn the_default_serves_when_no_rule_matches_and_none_without_one() {
    let with_default = table(
        &[(r#"event.type == "widget""#, "/widgets")],
        Some("/products"),
    );
    assert_eq!(
        with_default.route(&event("gadget", json!({}))),
        Some("/products")
    );
    let without = table(&[(r#"event.type == "widget""#, "/widgets")], None);
    assert_eq!(without.route(&event("gadget", json!({}))), None);
    assert_eq!(without.try_route(&event("gadget", json!({}))), Ok(None));
    let only_default = table(&[], Some("/orders"));
    assert_eq!(only_default.route(&json!(null)), Some("/orders"));
    assert_eq!(table(&[], None).route(&event("x", json!({}))), None);
}

#[test]
fn a_rule_without_match_always_holds_as_in_dapr() {
    let routes = table(
        &[("  ", "/catch-all"), ("false", "/never")],
        Some("/default"),
    );
    assert_eq!(
        routes.route(&json!("not even an object")),
        Some("/catch-all")
    );
}

#[test]
fn expressions_read_nested_data_with_dapr_operators_and_functions() {
    let cases = [
        (r#"event.data.customer.address.city == "Paris""#, true),
        (r#"event.data.customer.address.city == "Lyon""#, false),
        ("event.data.price > 100", true),
        ("event.data.price > 100 && event.data.qty == 3", true),
        ("event.data.qty == 3.0 || false", true),
        ("!(event.data.qty < 3)", true),
        ("has(event.data.customer)", true),
        ("has(event.data.coupon)", false),
        (
            "!has(event.data.coupon) && has(event.data.customer.address.city)",
            true,
        ),
        (r#"event.source.startsWith("billing/")"#, true),
        (
            r#"event.source.endsWith("/orders") && event.source.contains("ing")"#,
            true,
        ),
        (r#"event.source.matches("^billing/[a-z]+$")"#, true),
        (r#"event.type in ["order.created", "order.updated"]"#, true),
        (r#""vip" in event.data.tags"#, true),
        (r#"event.data.items.exists(i, i.sku == "B-2")"#, true),
        ("event.data.items.all(i, i.qty > 0)", true),
        ("size(event.data.items) == 2", true),
        ("event.data.gift == false && event.data.note == null", true),
        (r#"event.data.qty == "3""#, false),
    ];
    let event = event(
        "order.created",
        json!({
            "customer": {"address": {"city": "Paris"}},
            "price": 150.5,
            "qty": 3,
            "tags": ["new", "vip"],
            "items": [{"sku": "A-1", "qty": 1}, {"sku": "B-2", "qty": 2}],
            "gift": false,
            "note": null,
        }),
    );
    for (condition, expected) in cases {
        let routes = table(&[(condition, "/hit")], Some("/miss"));
        let path = routes.try_route(&event);
        let wanted = if expected { "/hit" } else { "/miss" };
        assert_eq!(path, Ok(Some(wanted)), "{condition}");
    }
}

#[test]
fn a_rule_that_cannot_be_evaluated_is_false_for_route_and_an_error_for_try_route() {
    let cases = [
        // A field missing without has().
        ("event.data.missing == 1", "No such key: missing"),
        ("event.nodata.x == 1", "No such key: nodata"),
        // A type mismatch.
        ("event.data.name > 100", "_>_"),
        // Not a boolean.
        ("event.data.name", "not a boolean"),
        // An unknown function.
        ("event.data.name.shout()", "shout"),
    ];
    let event = event("t", json!({"name": "widget"}));
    for (condition, message) in cases {
        let routes = table(
            &[(condition, "/broken"), ("true", "/next")],
            Some("/default"),
        );
        assert_eq!(routes.route(&event), Some("/next"), "{condition}");
        let error = routes.try_route(&event).unwrap_err();
        assert_eq!(error.index, 0, "{condition}");
        assert_eq!(error.condition, condition);
        assert!(
            error.message.contains(message),
            "{condition}: `{}` lacks `{message}`",
            error.message
        );
        assert!(
            error.to_string().starts_with("routes.rules[0] (`"),
            "{error}"
        );
    }
}

#[test]
fn events_that_are_not_objects_or_too_deep_never_panic() {
    let routes = table(&[(r#"event.type == "x""#, "/x")], Some("/default"));
    for odd in [json!(null), json!("text"), json!([1, 2]), json!(42)] {
        assert_eq!(routes.route(&odd), Some("/default"), "{odd}");
        assert!(routes.try_route(&odd).is_err(), "{odd}");
    }
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!({ "d": deep });
    }
    let reads_deep = table(&[("has(event.d)", "/d")], Some("/default"));
    assert_eq!(reads_deep.route(&deep), Some("/default"));
    let error = reads_deep.try_route(&deep).unwrap_err();
    assert!(error.message.contains("deeper than"), "{error}");
    // A rule that does not read the deep part is not troubled by it.
    let mut typed = deep.clone();
    typed["type"] = json!("x");
    assert_eq!(routes.try_route(&typed), Ok(Some("/x")));
}

#[test]
fn only_the_fields_rules_read_are_converted_and_they_see_the_same_values() {
    use super::expression::{Reads, compile};
    use std::collections::BTreeMap;
    let fields = |entries: Vec<(&str, Reads)>| {
        Reads::Fields(
            entries
                .into_iter()
                .map(|(name, reads)| (name.to_owned(), reads))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let reads_of = |conditions: &[&str]| {
        let mut reads = Reads::nothing();
        for condition in conditions {
            compile(condition, &mut reads).unwrap();
        }
        reads
    };
    assert_eq!(
        reads_of(&[
            "event.type == 'a'",
            "has(event.data.x) && event.data.y.z > 1"
        ]),
        fields(vec![
            (
                "data",
                fields(vec![
                    ("x", Reads::Whole),
                    ("y", fields(vec![("z", Reads::Whole)]))
                ])
            ),
            ("type", Reads::Whole),
        ])
    );
    assert_eq!(
        reads_of(&[
            "event.data.items.exists(i, i.sku == 'a')",
            "size(event.data) > 0"
        ]),
        fields(vec![("data", Reads::Whole)])
    );
    assert_eq!(
        reads_of(&["event.type == 'a'", "size(event) == 8"]),
        Reads::Whole
    );
    assert_eq!(reads_of(&["event['type'] == 'a'"]), Reads::Whole);
    assert_eq!(
        reads_of(&["[1].exists(event, event > 0)", ""]),
        Reads::nothing()
    );

    // Whole or projected, the rules see the same event.
    let event = event(
        "t",
        json!({"x": 1, "y": {"z": 2, "w": 3}, "big": [1, 2, 3]}),
    );
    for (condition, expected) in [
        ("has(event.data.x) && event.data.y.z == 2.0", Some("/hit")),
        ("has(event.data.y.w)", Some("/hit")),
        ("has(event.data.nope)", Some("/miss")),
        ("size(event.data.y) == 2", Some("/hit")),
        ("event.data.y == {'z': 2, 'w': 3}", Some("/hit")),
    ] {
        let routes = table(&[(condition, "/hit")], Some("/miss"));
        assert_eq!(routes.try_route(&event), Ok(expected), "{condition}");
    }
}

#[test]
fn a_bad_expression_fails_compilation_naming_the_rule() {
    let cases = [
        (
            r#"event.type == "a""#,
            "event.type ==",
            "routes.rules[1] (`event.type ==`): 1:14:",
        ),
        (
            "true",
            "event.type = 'x'",
            "routes.rules[1] (`event.type = 'x'`):",
        ),
        ("true", "evnt.type == 'x'", "unknown variable `evnt`"),
        (
            "true",
            "event.data.items.exists(i, j > 1)",
            "unknown variable `j`",
        ),
        ("true", "event.?type", "routes.rules[1]"),
    ];
    for (first, second, expected) in cases {
        let routes = Routes {
            rules: vec![
                RouteRule {
                    condition: first.into(),
                    path: "/a".into(),
                },
                RouteRule {
                    condition: second.into(),
                    path: "/b".into(),
                },
            ],
            default: None,
        };
        let error = RouteTable::compile(&routes).unwrap_err();
        assert!(
            error.contains(expected),
            "{second}: `{error}` lacks `{expected}`"
        );
        assert!(!error.contains('\n'), "one line: {error}");
    }
    // Macro variables and type names are not unknown.
    assert!(
        compile_condition("event.data.items.exists(i, i > 1) && type(event.id) == string").is_ok()
    );
}
