//! How values sit in Dapr's `value jsonb` / `isbinary` columns: bytes that are
//! JSON go in as they are; anything else goes in as a base64 JSON string with
//! `isbinary` set. Reading reverses it, so binary values round-trip exactly
//! and JSON values come back as PostgreSQL normalises jsonb (as with Dapr).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A value as the `value` and `isbinary` columns hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// JSON text for the `value jsonb` column.
    pub json: String,
    /// The `isbinary` column: whether `json` is a base64 string of raw bytes.
    pub is_binary: bool,
}

/// Chooses the column form of `value`.
pub fn encode(value: &[u8]) -> Stored {
    match std::str::from_utf8(value) {
        // jsonb rejects the NUL escape that JSON allows, so such values are
        // kept as bytes rather than failing the write.
        Ok(text)
            if !text.contains("\\u0000")
                && serde_json::from_str::<serde_json::Value>(text).is_ok() =>
        {
            Stored {
                json: text.to_string(),
                is_binary: false,
            }
        }
        _ => Stored {
            json: serde_json::Value::String(BASE64.encode(value)).to_string(),
            is_binary: true,
        },
    }
}

/// The value bytes from the columns' text. A row that claims to be binary
/// but is not a base64 string is reported, not guessed at.
pub fn decode(json: Vec<u8>, is_binary: bool) -> Result<Vec<u8>, String> {
    if !is_binary {
        return Ok(json);
    }
    let text: String = serde_json::from_slice(&json)
        .map_err(|err| format!("binary value is not a JSON string: {err}"))?;
    BASE64
        .decode(text)
        .map_err(|err| format!("binary value is not base64: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_kept_and_everything_else_is_base64() {
        let cases: &[(&[u8], &str, bool)] = &[
            (br#"{"a": [1, 2]}"#, r#"{"a": [1, 2]}"#, false),
            (b"42", "42", false),
            (br#""text""#, r#""text""#, false),
            (b"plain text", r#""cGxhaW4gdGV4dA==""#, true),
            (b"", r#""""#, true),
            (b"\xff\x00", r#""/wA=""#, true),
            (br#""nul \u0000""#, r#""Im51bCBcdTAwMDAi""#, true),
            (b"{\"a\": 1", r#""eyJhIjogMQ==""#, true),
        ];
        for (value, json, is_binary) in cases {
            let stored = encode(value);
            assert_eq!(
                (stored.json.as_str(), stored.is_binary),
                (*json, *is_binary),
                "{value:?}"
            );
            assert_eq!(
                decode(stored.json.into_bytes(), stored.is_binary).as_deref(),
                Ok(*value)
            );
        }
    }

    #[test]
    fn corrupt_binary_rows_are_errors() {
        for json in [&b"42"[..], b"\"not base64!\"", b"{"] {
            assert!(decode(json.to_vec(), true).is_err(), "{json:?}");
        }
    }
}
