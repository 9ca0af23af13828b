//! Programmatic subscriptions as apps and Dapr's SDKs answer them.
#![allow(clippy::unwrap_used)]

use super::*;

fn parse(body: &str) -> Result<Vec<SubscriptionSpec>, String> {
    from_app_json(body.as_bytes())
}

fn rule(condition: &str, path: &str) -> RouteRule {
    RouteRule {
        condition: condition.into(),
        path: path.into(),
    }
}

#[test]
fn a_v1_answer_from_dapr_docs_with_dead_letter_bulk_and_metadata() {
    let body = r#"[
      {"pubsubname": "pubsub", "topic": "orders", "route": "/checkout",
       "deadLetterTopic": "poisonMessages", "metadata": {"rawPayload": "true"}},
      {"pubsubname": "order-pub-sub", "topic": "orders", "route": "checkout",
       "bulkSubscribe": {"enabled": true, "maxMessagesCount": 100, "maxAwaitDurationMs": 40}}
    ]"#;
    let specs = parse(body).unwrap();
    assert_eq!(
        specs,
        vec![
            SubscriptionSpec {
                pubsub_name: "pubsub".into(),
                topic: "orders".into(),
                routes: Routes {
                    rules: vec![],
                    default: Some("/checkout".into()),
                },
                metadata: [("rawPayload".to_owned(), "true".to_owned())].into(),
                dead_letter_topic: Some("poisonMessages".into()),
                bulk: None,
                origin: "app".into(),
                kind: SubscriptionKind::Programmatic,
            },
            SubscriptionSpec {
                pubsub_name: "order-pub-sub".into(),
                topic: "orders".into(),
                routes: Routes {
                    rules: vec![],
                    // Kept as written: `http_path` adds the slash for HTTP.
                    default: Some("checkout".into()),
                },
                metadata: Metadata::new(),
                dead_letter_topic: None,
                bulk: Some(BulkSubscribe {
                    max_messages: 100,
                    max_await_ms: 40,
                }),
                origin: "app".into(),
                kind: SubscriptionKind::Programmatic,
            },
        ]
    );
    assert!(specs[0].raw_payload());
    assert!(!specs[1].raw_payload());
}

#[test]
fn a_v2_answer_with_routing_rules_from_dapr_docs() {
    let body = r#"[{
      "pubsubname": "pubsub",
      "topic": "inventory",
      "routes": {
        "rules": [
          {"match": "event.type == \"widget\"", "path": "/widgets"},
          {"match": "event.type == \"gadget\"", "path": "/gadgets"}
        ],
        "default": "/products"
      }
    }]"#;
    let specs = parse(body).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(
        specs[0].routes,
        Routes {
            rules: vec![
                rule(r#"event.type == "widget""#, "/widgets"),
                rule(r#"event.type == "gadget""#, "/gadgets"),
            ],
            default: Some("/products".into()),
        }
    );
}

#[test]
fn dapr_precedence_between_route_and_routes_default() {
    let body = r#"[
      {"pubsubname": "p", "topic": "a", "route": "/v1", "routes": {"default": "/v2"}},
      {"pubsubname": "p", "topic": "b", "route": "/v1", "routes": {"rules": [{"match": "true", "path": "/r"}]}},
      {"pubsubname": "p", "topic": "c", "route": "", "routes": {"default": "", "rules": [{"match": "true", "path": "/r"}]}},
      {"pubsubname": "p", "topic": "d", "routes": {"rules": [{"path": "/no-match-means-always"}]}}
    ]"#;
    let specs = parse(body).unwrap();
    let defaults: Vec<Option<&str>> = specs.iter().map(|s| s.routes.default.as_deref()).collect();
    assert_eq!(defaults, vec![Some("/v2"), Some("/v1"), None, None]);
    assert_eq!(specs[1].routes.rules, vec![rule("true", "/r")]);
    assert_eq!(
        specs[3].routes.rules,
        vec![rule("", "/no-match-means-always")]
    );
}

#[test]
fn field_names_match_ignoring_case_and_null_means_absent_as_in_go() {
    let body = r#"[{"pubsubName": "pubsub", "Topic": "orders", "ROUTE": "/o",
                    "DeadLetterTopic": "dead", "metadata": null, "routes": null,
                    "bulkSubscribe": {"Enabled": true, "maxMessagesCount": null},
                    "unknownField": {"ignored": true}}]"#;
    let specs = parse(body).unwrap();
    assert_eq!(specs[0].pubsub_name, "pubsub");
    assert_eq!(specs[0].topic, "orders");
    assert_eq!(specs[0].routes.default.as_deref(), Some("/o"));
    assert_eq!(specs[0].dead_letter_topic.as_deref(), Some("dead"));
    assert_eq!(specs[0].bulk, Some(BulkSubscribe::default()));
    // An exact match wins over one that differs in case.
    let both = parse(r#"[{"pubsubname": "p", "topic": "exact", "TOPIC": "loud", "route": "/x"}]"#);
    assert_eq!(both.unwrap()[0].topic, "exact");
}

#[test]
fn entries_without_any_route_are_dropped_as_dapr_drops_them() {
    let body = r#"[
      {"pubsubname": "p", "topic": "routed", "route": "/r"},
      {"pubsubname": "p", "topic": "unrouted"},
      {"pubsubname": "p", "topic": "empty", "route": "", "routes": {"rules": []}}
    ]"#;
    let topics: Vec<String> = parse(body).unwrap().into_iter().map(|s| s.topic).collect();
    assert_eq!(topics, vec!["routed"]);
    assert_eq!(parse("[]").unwrap(), vec![]);
    assert_eq!(parse("null").unwrap(), vec![]);
}

#[test]
fn bulk_subscribe_defaults_and_disabled() {
    let bulk = |json: &str| {
        let body = format!(
            r#"[{{"pubsubname": "p", "topic": "t", "route": "/t", "bulkSubscribe": {json}}}]"#
        );
        parse(&body).map(|specs| specs[0].bulk)
    };
    assert_eq!(
        bulk(r#"{"enabled": false, "maxMessagesCount": 5}"#),
        Ok(None)
    );
    assert_eq!(bulk("{}"), Ok(None));
    assert_eq!(
        bulk(r#"{"enabled": true, "maxMessagesCount": 0, "maxAwaitDurationMs": 250}"#),
        Ok(Some(BulkSubscribe {
            max_messages: 100,
            max_await_ms: 250
        }))
    );
}

#[test]
fn every_bad_entry_is_reported_by_index_at_once() {
    let body = r#"[
      {"pubsubname": "p", "topic": "fine", "route": "/fine"},
      {"topic": "t", "route": "/t"},
      {"pubsubname": "p", "topic": "  ", "route": "/t"},
      {"pubsubname": "p", "topic": 7, "route": "/t",
       "metadata": {"rawPayload": true},
       "bulkSubscribe": {"enabled": "yes", "maxMessagesCount": -1, "maxAwaitDurationMs": 1.5}},
      {"pubsubname": "p", "topic": "t", "routes": {"rules": [{"match": "event.type ==", "path": "/x"}, 5]}},
      {"pubsubname": "p", "topic": "t", "routes": {"rules": {"match": "true"}}},
      {"pubsubname": "p", "topic": "t", "route": "/t", "bulkSubscribe": {"maxMessagesCount": 3000000000}},
      null
    ]"#;
    let error = parse(body).unwrap_err();
    let lines: Vec<&str> = error.split("; ").collect();
    for expected in [
        "entry 1: pubsubname: missing",
        "entry 2: topic: missing",
        "entry 3: topic: expected a string, got a number",
        "entry 3: topic: missing",
        "entry 3: metadata.rawPayload: expected a string, got a boolean",
        "entry 3: bulkSubscribe.enabled: expected true or false, got a string",
        "entry 3: bulkSubscribe.maxAwaitDurationMs: 1.5 is not a whole number in range",
        "entry 3: bulkSubscribe.maxMessagesCount: -1 is out of range",
        "entry 4: routes.rules[0].match: `event.type ==`: 1:14:",
        "entry 4: routes.rules[1]: expected an object, got a number",
        "entry 5: routes.rules: expected an array, got an object",
        "entry 6: bulkSubscribe.maxMessagesCount: 3000000000 is out of range",
        "entry 7: the entry: expected an object, got null",
    ] {
        assert!(
            lines.iter().any(|line| line.starts_with(expected)),
            "missing `{expected}` in {lines:#?}"
        );
    }
    assert!(!error.contains("entry 0"), "{error}");
}

#[test]
fn answers_that_are_not_an_array_of_objects() {
    for (body, expected) in [
        ("", "the answer is not JSON"),
        (
            "{\"pubsubname\": \"p\"}",
            "expected a JSON array of subscriptions, got an object",
        ),
        (
            "[\"orders\"]",
            "entry 0: the entry: expected an object, got a string",
        ),
    ] {
        let error = parse(body).unwrap_err();
        assert!(error.starts_with(expected), "{body}: {error}");
    }
}

#[test]
fn http_paths_add_the_leading_slash_dapr_adds() {
    assert_eq!(http_path("/orders"), "/orders");
    assert_eq!(http_path("orders"), "/orders");
    assert_eq!(http_path("api/v1/orders"), "/api/v1/orders");
    assert_eq!(http_path(""), "/");
}
