//! ETags and Dapr's concurrency modes.
//!
//! An ETag is the decimal version number of the record. The check follows
//! Dapr's own stores: an ETag must match the live record (a missing or
//! expired record matches no ETag); without one, first-write refuses a key
//! that exists and last-write lets the write through. An empty ETag counts
//! as none, as Dapr's `HasETag` treats it.

use crate::state::Concurrency;
use crate::{Error, Result};

/// The version an ETag names; `etag-invalid` for anything this kind of store
/// never issues, so a client sees 400 rather than a misleading 409.
pub fn parse_etag(etag: &str) -> Result<u64> {
    if etag.is_empty() || !etag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::EtagInvalid);
    }
    etag.parse().map_err(|_| Error::EtagInvalid)
}

/// Whether a write or delete may go ahead, given the live record's version
/// (`None` when the key is missing or expired).
pub fn check_concurrency(
    current: Option<u64>,
    etag: Option<&str>,
    concurrency: Concurrency,
) -> Result<()> {
    match etag.filter(|etag| !etag.is_empty()) {
        Some(etag) if current == Some(parse_etag(etag)?) => Ok(()),
        Some(_) => Err(Error::EtagMismatch),
        None if current.is_some() && matches!(concurrency, Concurrency::FirstWrite) => {
            Err(Error::EtagMismatch)
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_rules::conformance::{Outcome as Want, outcome};

    #[test]
    fn parse_table() {
        let cases = [
            ("1", Some(1)),
            ("0042", Some(42)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("", None),
            ("+1", None),
            ("-1", None),
            (" 1", None),
            ("1.0", None),
            ("W/\"1\"", None),
            ("a3f9c2", None),
        ];
        for (etag, want) in cases {
            assert_eq!(parse_etag(etag).ok(), want, "{etag:?}");
        }
    }

    #[test]
    fn concurrency_table() {
        use Concurrency::{FirstWrite as First, LastWrite as Last};
        let cases = [
            // (live version, etag, mode, outcome)
            (None, None, Last, Want::Ok),
            (None, None, First, Want::Ok),
            (Some(3), None, Last, Want::Ok),
            (Some(3), None, First, Want::Mismatch),
            (Some(3), Some(""), Last, Want::Ok),
            (Some(3), Some(""), First, Want::Mismatch),
            (Some(3), Some("3"), Last, Want::Ok),
            (Some(3), Some("3"), First, Want::Ok),
            (Some(3), Some("2"), Last, Want::Mismatch),
            (Some(3), Some("2"), First, Want::Mismatch),
            (None, Some("3"), Last, Want::Mismatch),
            (None, Some("3"), First, Want::Mismatch),
            (Some(3), Some("three"), Last, Want::Invalid),
            (None, Some("three"), First, Want::Invalid),
        ];
        for (current, etag, mode, want) in cases {
            let got = outcome(check_concurrency(current, etag, mode));
            assert_eq!(got, want, "current {current:?} etag {etag:?} {mode:?}");
        }
    }
}
