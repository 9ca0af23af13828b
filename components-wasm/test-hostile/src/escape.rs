//! `||escape`: tries to leave the granted directory, through `..` and
//! through symlinks the test planted inside it, for reading and writing.

use outrig_sdk::state::Item;
use outrig_sdk::{Error, Result};
use std::fs;

/// Where the test grants a read-write directory.
const GRANTED: &str = "/data";
/// A file the test puts inside the granted directory: reading it proves
/// the grant works, so the refusals below are the sandbox's doing.
const INSIDE: &str = "/data/inside.txt";

/// Reads (or with `Some`, writes) each path; all must be refused.
const ATTEMPTS: &[(&str, Option<&str>)] = &[
    ("/data/../outside/secret.txt", None),
    ("/data/../../../../../../etc/passwd", None),
    // -> ../outside/secret.txt
    ("/data/link-to-secret", None),
    // -> the secret's absolute host path
    ("/data/abs-link-to-secret", None),
    // -> ../outside
    ("/data/link-to-outside/secret.txt", None),
    ("/etc/passwd", None),
    ("/data/../outside/planted.txt", Some("planted by ../")),
    (
        "/data/link-to-outside/planted.txt",
        Some("planted through a symlink"),
    ),
    (
        "/data/link-to-secret",
        Some("overwritten through a symlink"),
    ),
];

/// Fails with `unavailable` listing each refusal when every attempt was
/// refused, with `internal` naming the breach when one was not, so a test
/// can tell a sandbox that holds from one with a hole.
pub(crate) fn escape() -> Result<Option<Item>> {
    if let Err(err) = fs::read(INSIDE) {
        return Err(Error::Internal(format!(
            "cannot read {INSIDE} inside the granted {GRANTED}: {err}"
        )));
    }
    let mut refusals = Vec::new();
    let mut breaches = Vec::new();
    for (path, write) in ATTEMPTS {
        let (what, outcome) = match write {
            None => ("read", fs::read(path).map(drop)),
            Some(text) => ("write", fs::write(path, text)),
        };
        match outcome {
            Ok(()) => breaches.push(format!("{what} {path}")),
            Err(err) => refusals.push(format!("{what} {path}: {:?}", err.kind())),
        }
    }
    if breaches.is_empty() {
        Err(Error::Unavailable(format!(
            "every escape was refused: {}",
            refusals.join("; ")
        )))
    } else {
        Err(Error::Internal(format!(
            "escaped the granted directory: {}",
            breaches.join("; ")
        )))
    }
}
