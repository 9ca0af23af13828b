//! Whole queries over a small employee data set, in the shape of Dapr's examples.

use super::*;
use serde_json::json;

fn item(key: &str, value: Value) -> QueryItem {
    QueryItem {
        key: key.to_owned(),
        value: value.to_string().into_bytes(),
        etag: Some("1".to_owned()),
    }
}

fn employees() -> Vec<QueryItem> {
    let rows = [
        ("1", "Dev Ops", 1036, "Seattle", "WA"),
        ("2", "Hardware", 1028, "Portland", "OR"),
        ("3", "Finance", 1071, "Sacramento", "CA"),
        ("4", "Dev Ops", 1042, "Spokane", "WA"),
        ("5", "Hardware", 1007, "Los Angeles", "CA"),
        ("6", "Dev Ops", 1054, "San Diego", "CA"),
    ];
    let mut items: Vec<QueryItem> = rows
        .iter()
        .map(|(key, org, id, city, state)| {
            let value = json!({"person": {"org": org, "id": id}, "city": city, "state": state});
            item(&format!("app||{key}"), value)
        })
        .collect();
    items.push(QueryItem {
        key: "app||raw".to_owned(),
        value: b"not json at all".to_vec(),
        etag: None,
    });
    items
}

fn keys(response: &QueryResponse) -> Vec<&str> {
    response
        .results
        .iter()
        .map(|item| item.key.trim_start_matches("app||"))
        .collect()
}

#[test]
fn queries_filter_sort_and_page() {
    let cases: &[(&str, Value, &[&str], Option<&str>)] = &[
        (
            "everything, non-JSON left out",
            json!({}),
            &["1", "2", "3", "4", "5", "6"],
            None,
        ),
        (
            "null parts",
            json!({"filter": null, "sort": null, "page": null}),
            &["1", "2", "3", "4", "5", "6"],
            None,
        ),
        (
            "empty filter",
            json!({"filter": {}}),
            &["1", "2", "3", "4", "5", "6"],
            None,
        ),
        (
            "EQ on a field",
            json!({"filter": {"EQ": {"state": "CA"}}}),
            &["3", "5", "6"],
            None,
        ),
        (
            "EQ on a nested field, sorted DESC",
            json!({"filter": {"EQ": {"person.org": "Dev Ops"}}, "sort": [{"key": "person.id", "order": "DESC"}]}),
            &["6", "4", "1"],
            None,
        ),
        (
            "IN with sort on two keys",
            json!({
                "filter": {"IN": {"state": ["CA", "WA"]}},
                "sort": [{"key": "state", "order": "DESC"}, {"key": "person.id"}]
            }),
            &["1", "4", "5", "6", "3"],
            None,
        ),
        (
            "OR of AND",
            json!({"filter": {"OR": [
                {"EQ": {"person.org": "Finance"}},
                {"AND": [{"EQ": {"person.org": "Dev Ops"}}, {"IN": {"state": ["CA", "OR"]}}]}
            ]}}),
            &["3", "6"],
            None,
        ),
        (
            "GT on numbers",
            json!({"filter": {"GT": {"person.id": 1042}}}),
            &["3", "6"],
            None,
        ),
        (
            "first page",
            json!({"sort": [{"key": "person.id"}], "page": {"limit": 2}}),
            &["5", "2"],
            Some("2"),
        ),
        (
            "middle page",
            json!({"sort": [{"key": "person.id"}], "page": {"limit": 2, "token": "2"}}),
            &["1", "4"],
            Some("4"),
        ),
        (
            "last page",
            json!({"sort": [{"key": "person.id"}], "page": {"limit": 2, "token": "4"}}),
            &["6", "3"],
            None,
        ),
        (
            "past the end",
            json!({"page": {"limit": 2, "token": "40"}}),
            &[],
            None,
        ),
        (
            "limit 0 means all",
            json!({"page": {"limit": 0}}),
            &["1", "2", "3", "4", "5", "6"],
            None,
        ),
        (
            "nothing matches",
            json!({"filter": {"EQ": {"state": "NY"}}}),
            &[],
            None,
        ),
    ];
    for (name, query, want, token) in cases {
        let query =
            Query::parse(&query.to_string()).unwrap_or_else(|err| panic!("{name}: {err:?}"));
        let response = query.run(employees());
        assert_eq!(keys(&response), *want, "{name}");
        assert_eq!(response.token.as_deref(), *token, "{name}");
    }
}

#[test]
fn results_keep_the_stored_bytes_and_etag() {
    let response = Query::parse(r#"{"filter": {"EQ": {"city": "Seattle"}}}"#)
        .expect("valid query")
        .run(employees());
    let [only] = response.results.as_slice() else {
        panic!("want one result, got {}", response.results.len());
    };
    assert_eq!(only.key, "app||1");
    assert_eq!(only.etag.as_deref(), Some("1"));
    assert_eq!(only.value, employees()[0].value);
}

#[test]
fn invalid_queries_are_invalid_arguments() {
    let cases = [
        ("", "not JSON"),
        ("[]", "must be a JSON object"),
        (
            r#"{"filter": {"EQ": {"a": 1}, "GT": {"b": 2}}}"#,
            "exactly one operator",
        ),
        (
            r#"{"filter": {"MATCH": {"a": 1}}}"#,
            "unsupported filter operator",
        ),
        (
            r#"{"sort": [{"key": "a", "order": "SIDEWAYS"}]}"#,
            "neither",
        ),
        (r#"{"page": {"limit": -5}}"#, "page limit"),
        (r#"{"page": {"token": "next"}}"#, "not issued by this store"),
    ];
    for (text, reason) in cases {
        match Query::parse(text) {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.starts_with("invalid query: "), "{text}: {message}");
                assert!(
                    message.contains(reason),
                    "{text}: `{message}` lacks `{reason}`"
                );
            }
            other => panic!("{text}: want invalid-argument, got {other:?}"),
        }
    }
}

#[test]
fn from_str_parses_like_parse() {
    let text = r#"{"filter": {"EQ": {"state": "WA"}}, "page": {"limit": 1}}"#;
    let parsed: Query = text.parse().expect("valid query");
    assert_eq!(Some(parsed), Query::parse(text).ok());
}
