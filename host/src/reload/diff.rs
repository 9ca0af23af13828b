//! What a reload must do with each component, decided from what serves now
//! and what the resource files say. Pure, so every case is a table row.

use crate::config::resources::ComponentResource;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A component as the resource files now describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Its resource.
    pub resource: ComponentResource,
    /// sha256 of its `spec.wasm` file as it is now; `None` for a built-in,
    /// or when the file cannot be read (the load then reports why).
    pub sha256: Option<String>,
}

/// A component as the catalog has it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// The resource of the serving version, or of the last attempt when
    /// nothing serves.
    pub resource: &'a ComponentResource,
    /// sha256 of the serving version's wasm.
    pub sha256: Option<&'a str>,
    /// Whether a version serves.
    pub serving: bool,
}

/// What to do with one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New: load it.
    Add,
    /// Serving, but its resource or wasm changed: load the new version, and
    /// keep the old one if that fails.
    Update,
    /// Listed, but nothing serves (its last load failed): try again.
    Retry,
    /// Serving exactly what is listed: keep it as it is.
    Keep,
    /// No longer listed: remove it.
    Remove,
    /// Its resource file has errors: keep what serves and report the error.
    KeepBroken(String),
}

/// The change for every component that serves or is listed.
/// `broken_files` maps each resource file that could not be read to its
/// first error; components from those files are kept, not removed.
pub fn plan(
    current: &BTreeMap<String, Current<'_>>,
    desired: &[Desired],
    broken_files: &BTreeMap<PathBuf, String>,
) -> BTreeMap<String, Change> {
    let mut changes = BTreeMap::new();
    for wanted in desired {
        let name = &wanted.resource.name;
        let change = match current.get(name) {
            None => Change::Add,
            Some(now) if !now.serving => Change::Retry,
            Some(now) if is_serving_version(now, wanted) => Change::Keep,
            Some(_) => Change::Update,
        };
        changes.insert(name.clone(), change);
    }
    for (name, now) in current {
        if changes.contains_key(name) {
            continue;
        }
        let change = match broken_files.get(&now.resource.source) {
            Some(error) => Change::KeepBroken(error.clone()),
            None => Change::Remove,
        };
        changes.insert(name.clone(), change);
    }
    changes
}

/// Whether `wanted` is what already serves: the same resource and, for a
/// user's component, the same wasm bytes.
fn is_serving_version(now: &Current<'_>, wanted: &Desired) -> bool {
    if *now.resource != wanted.resource {
        return false;
    }
    match wanted.resource.wasm {
        // A built-in's bytes are in the binary: only its resource can change.
        None => true,
        Some(_) => wanted.sha256.is_some() && wanted.sha256.as_deref() == now.sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resources::{MetadataEntry, MetadataValue, WasmSource};

    fn builtin(name: &str, metadata: &str) -> ComponentResource {
        ComponentResource {
            name: name.into(),
            namespace: None,
            component_type: "state.in-memory".into(),
            version: "v1".into(),
            metadata: vec![MetadataEntry {
                name: "m".into(),
                value: MetadataValue::Plain(metadata.into()),
            }],
            scopes: Vec::new(),
            wasm: None,
            source: format!("res/{name}.yaml").into(),
        }
    }

    fn user(name: &str) -> ComponentResource {
        ComponentResource {
            component_type: "state.mine".into(),
            wasm: Some(WasmSource {
                path: "res/mine.wasm".into(),
                ..WasmSource::default()
            }),
            ..builtin(name, "")
        }
    }

    /// One row: what serves (resource, sha, serving), what is listed
    /// (resource, sha), which files are broken, and the expected change.
    struct Row {
        what: &'static str,
        current: Option<(ComponentResource, Option<&'static str>, bool)>,
        desired: Option<(ComponentResource, Option<&'static str>)>,
        broken: &'static [&'static str],
        expected: Change,
    }

    #[test]
    fn each_case_gets_its_change() {
        let rows = [
            Row {
                what: "a new component is added",
                current: None,
                desired: Some((builtin("a", "x"), None)),
                broken: &[],
                expected: Change::Add,
            },
            Row {
                what: "an unchanged built-in is kept",
                current: Some((builtin("a", "x"), Some("s1"), true)),
                desired: Some((builtin("a", "x"), None)),
                broken: &[],
                expected: Change::Keep,
            },
            Row {
                what: "changed metadata updates",
                current: Some((builtin("a", "x"), Some("s1"), true)),
                desired: Some((builtin("a", "y"), None)),
                broken: &[],
                expected: Change::Update,
            },
            Row {
                what: "the same wasm bytes are kept",
                current: Some((user("a"), Some("s1"), true)),
                desired: Some((user("a"), Some("s1"))),
                broken: &[],
                expected: Change::Keep,
            },
            Row {
                what: "new wasm bytes update",
                current: Some((user("a"), Some("s1"), true)),
                desired: Some((user("a"), Some("s2"))),
                broken: &[],
                expected: Change::Update,
            },
            Row {
                what: "an unreadable wasm file updates (and the load says why)",
                current: Some((user("a"), Some("s1"), true)),
                desired: Some((user("a"), None)),
                broken: &[],
                expected: Change::Update,
            },
            Row {
                what: "a failed component is retried",
                current: Some((builtin("a", "x"), None, false)),
                desired: Some((builtin("a", "x"), None)),
                broken: &[],
                expected: Change::Retry,
            },
            Row {
                what: "an unlisted component is removed",
                current: Some((builtin("a", "x"), Some("s1"), true)),
                desired: None,
                broken: &["res/other.yaml"],
                expected: Change::Remove,
            },
            Row {
                what: "a component whose file broke is kept",
                current: Some((builtin("a", "x"), Some("s1"), true)),
                desired: None,
                broken: &["res/a.yaml"],
                expected: Change::KeepBroken("bad a".into()),
            },
        ];
        for row in rows {
            let current: BTreeMap<String, Current<'_>> = row
                .current
                .iter()
                .map(|(resource, sha256, serving)| {
                    let now = Current {
                        resource,
                        sha256: *sha256,
                        serving: *serving,
                    };
                    (resource.name.clone(), now)
                })
                .collect();
            let desired: Vec<Desired> = row
                .desired
                .iter()
                .map(|(resource, sha256)| Desired {
                    resource: resource.clone(),
                    sha256: sha256.map(str::to_owned),
                })
                .collect();
            let broken = row
                .broken
                .iter()
                .map(|file| (PathBuf::from(file), "bad a".to_owned()))
                .collect();
            let changes = plan(&current, &desired, &broken);
            assert_eq!(changes.get("a"), Some(&row.expected), "{}", row.what);
            assert_eq!(changes.len(), 1, "{}", row.what);
        }
    }

    #[test]
    fn several_components_are_planned_together() {
        let (kept, updated, removed) = (builtin("kept", "x"), user("updated"), builtin("gone", ""));
        let current = BTreeMap::from([
            (
                "kept".to_owned(),
                Current {
                    resource: &kept,
                    sha256: Some("k"),
                    serving: true,
                },
            ),
            (
                "updated".to_owned(),
                Current {
                    resource: &updated,
                    sha256: Some("u1"),
                    serving: true,
                },
            ),
            (
                "gone".to_owned(),
                Current {
                    resource: &removed,
                    sha256: Some("g"),
                    serving: true,
                },
            ),
        ]);
        let desired = [
            Desired {
                resource: kept.clone(),
                sha256: None,
            },
            Desired {
                resource: updated.clone(),
                sha256: Some("u2".into()),
            },
            Desired {
                resource: builtin("new", ""),
                sha256: None,
            },
        ];
        let changes = plan(&current, &desired, &BTreeMap::new());
        let expected = BTreeMap::from([
            ("gone".to_owned(), Change::Remove),
            ("kept".to_owned(), Change::Keep),
            ("new".to_owned(), Change::Add),
            ("updated".to_owned(), Change::Update),
        ]);
        assert_eq!(changes, expected);
    }
}
