//! Which fields a `Component`, `Subscription` or `Resiliency` document may have, to find
//! the ones Outrig does not know. Those are reported (and logged), never dropped silently: a
//! misspelt `secretKeyRf` should not quietly mean "no secret".

use serde_yaml_ng::Value;

/// The shape of a part of a document.
enum Shape {
    /// A value whose inside is not checked.
    Leaf,
    /// A mapping with these fields.
    Map(&'static [(&'static str, Shape)]),
    /// A sequence of items of this shape.
    List(&'static Shape),
}

const METADATA_ITEM: Shape = Shape::Map(&[
    ("name", Shape::Leaf),
    ("value", Shape::Leaf),
    (
        "secretKeyRef",
        Shape::Map(&[("name", Shape::Leaf), ("key", Shape::Leaf)]),
    ),
]);

const FILE_GRANT: Shape = Shape::Map(&[
    ("host", Shape::Leaf),
    ("guest", Shape::Leaf),
    ("readOnly", Shape::Leaf),
]);

const OBJECT_META: Shape = Shape::Map(&[("name", Shape::Leaf), ("namespace", Shape::Leaf)]);

static COMPONENT: Shape = Shape::Map(&[
    ("apiVersion", Shape::Leaf),
    ("kind", Shape::Leaf),
    ("metadata", OBJECT_META),
    (
        "spec",
        Shape::Map(&[
            ("type", Shape::Leaf),
            ("version", Shape::Leaf),
            ("metadata", Shape::List(&METADATA_ITEM)),
            (
                "wasm",
                Shape::Map(&[
                    ("path", Shape::Leaf),
                    ("url", Shape::Leaf),
                    ("sha256", Shape::Leaf),
                    (
                        "capabilities",
                        Shape::Map(&[
                            ("outbound", Shape::Leaf),
                            ("blockPrivateNetworks", Shape::Leaf),
                            ("http", Shape::Leaf),
                            ("env", Shape::Leaf),
                            ("files", Shape::List(&FILE_GRANT)),
                            ("memoryMiB", Shape::Leaf),
                            ("timeoutMs", Shape::Leaf),
                            ("maxInstances", Shape::Leaf),
                        ]),
                    ),
                ]),
            ),
        ]),
    ),
    ("scopes", Shape::Leaf),
]);

const BULK_SUBSCRIBE: Shape = Shape::Map(&[
    ("enabled", Shape::Leaf),
    ("maxMessagesCount", Shape::Leaf),
    ("maxAwaitDurationMs", Shape::Leaf),
]);

/// Both versions of a `Subscription` document: v1alpha1 has `spec.route`,
/// v2alpha1 `spec.routes` (see [`unknown_subscription_fields`]).
/// `spec.metadata` is a free-form map of names to values.
static SUBSCRIPTION: Shape = Shape::Map(&[
    ("apiVersion", Shape::Leaf),
    ("kind", Shape::Leaf),
    ("metadata", OBJECT_META),
    (
        "spec",
        Shape::Map(&[
            ("pubsubname", Shape::Leaf),
            ("topic", Shape::Leaf),
            (V1_ROUTE, Shape::Leaf),
            (
                V2_ROUTES,
                Shape::Map(&[
                    (
                        "rules",
                        Shape::List(&Shape::Map(&[
                            ("match", Shape::Leaf),
                            ("path", Shape::Leaf),
                        ])),
                    ),
                    ("default", Shape::Leaf),
                ]),
            ),
            ("metadata", Shape::Leaf),
            ("deadLetterTopic", Shape::Leaf),
            ("bulkSubscribe", BULK_SUBSCRIBE),
        ]),
    ),
    ("scopes", Shape::Leaf),
]);

/// Dapr's `Resiliency`: the policies and targets inside are not checked
/// field by field (only retries and components' inbound retry are applied).
static RESILIENCY: Shape = Shape::Map(&[
    ("apiVersion", Shape::Leaf),
    ("kind", Shape::Leaf),
    ("metadata", OBJECT_META),
    (
        "spec",
        Shape::Map(&[
            (
                "policies",
                Shape::Map(&[
                    ("timeouts", Shape::Leaf),
                    ("retries", Shape::Leaf),
                    ("circuitBreakers", Shape::Leaf),
                ]),
            ),
            (
                "targets",
                Shape::Map(&[
                    ("apps", Shape::Leaf),
                    ("actors", Shape::Leaf),
                    ("components", Shape::Leaf),
                ]),
            ),
        ]),
    ),
    ("scopes", Shape::Leaf),
]);

/// v1alpha1's single route.
const V1_ROUTE: &str = "route";

/// v2alpha1's routes.
const V2_ROUTES: &str = "routes";

/// The fields of a `Component` document Outrig does not know: (path, value as YAML).
pub fn unknown_component_fields(document: &Value) -> Vec<(String, String)> {
    unknown_fields(document, &COMPONENT)
}

/// The fields of a `Subscription` document Outrig does not know, by the
/// schema of its version: the other version's route field is unknown too
/// (v1alpha1 does not read `routes`, v2alpha1 does not read `route`).
pub fn unknown_subscription_fields(document: &Value, v2: bool) -> Vec<(String, String)> {
    let mut found = unknown_fields(document, &SUBSCRIPTION);
    let other = if v2 { V1_ROUTE } else { V2_ROUTES };
    if let Some(value) = document.get("spec").and_then(|spec| spec.get(other)) {
        found.push((format!("spec.{other}"), yaml_text(value)));
    }
    found
}

/// The fields of a `Resiliency` document Outrig does not know.
pub fn unknown_resiliency_fields(document: &Value) -> Vec<(String, String)> {
    unknown_fields(document, &RESILIENCY)
}

fn unknown_fields(document: &Value, shape: &Shape) -> Vec<(String, String)> {
    let mut found = Vec::new();
    walk(document, shape, "", &mut found);
    found
}

fn walk(value: &Value, shape: &Shape, path: &str, found: &mut Vec<(String, String)>) {
    match (shape, value) {
        (Shape::Map(fields), Value::Mapping(mapping)) => {
            for (key, child) in mapping {
                let name = match key {
                    Value::String(name) => name.clone(),
                    other => yaml_text(other),
                };
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                match fields.iter().find(|(known, _)| *known == name) {
                    Some((_, child_shape)) => walk(child, child_shape, &child_path, found),
                    None => found.push((child_path, yaml_text(child))),
                }
            }
        }
        (Shape::List(item), Value::Sequence(items)) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, item, &format!("{path}[{index}]"), found);
            }
        }
        // Leaves, and values of the wrong type (the typed pass reports those).
        _ => {}
    }
}

/// A value as short YAML text, for messages.
fn yaml_text(value: &Value) -> String {
    const MAX: usize = 80;
    let text = match value {
        Value::String(text) => text.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|text| text.trim_end().replace('\n', " "))
            .unwrap_or_default(),
    };
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
