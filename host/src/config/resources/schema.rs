//! Which fields a `Component` document may have, to find the ones Outrig does
//! not know. Those are reported (and logged), never dropped silently: a
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

static COMPONENT: Shape = Shape::Map(&[
    ("apiVersion", Shape::Leaf),
    ("kind", Shape::Leaf),
    (
        "metadata",
        Shape::Map(&[("name", Shape::Leaf), ("namespace", Shape::Leaf)]),
    ),
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

/// The fields of a `Component` document Outrig does not know: (path, value as YAML).
pub fn unknown_component_fields(document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    walk(document, &COMPONENT, "", &mut found);
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
