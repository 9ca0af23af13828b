//! Dotted paths (`person.org`) into a JSON document, as query keys name them.

use serde_json::Value;

/// A path of object member names, parsed once from the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(Vec<String>);

impl Path {
    /// Splits `raw` on dots; an empty path or an empty segment (`a..b`) is an
    /// error because it can never name a member.
    pub(crate) fn parse(raw: &str) -> Result<Path, String> {
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{raw}` is not a valid key path"));
        }
        Ok(Path(segments))
    }

    /// The value the path names in `document`, if every member exists.
    pub(crate) fn lookup<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(document, |node, segment| node.as_object()?.get(segment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_rejects_empty_segments() {
        for raw in ["", ".", "a.", ".a", "a..b"] {
            assert!(Path::parse(raw).is_err(), "{raw:?} should be rejected");
        }
        assert!(Path::parse("a.b.c").is_ok());
    }

    #[test]
    fn lookup_follows_members_only() {
        let doc = json!({"person": {"org": "A", "ids": [1, 2]}, "n": 3});
        let cases = [
            ("person.org", Some(json!("A"))),
            ("n", Some(json!(3))),
            ("person", Some(json!({"org": "A", "ids": [1, 2]}))),
            ("person.missing", None),
            ("n.deeper", None),
            ("person.ids.0", None),
        ];
        for (raw, want) in cases {
            let path = Path::parse(raw).expect("valid path");
            assert_eq!(path.lookup(&doc), want.as_ref(), "path {raw}");
        }
    }
}
