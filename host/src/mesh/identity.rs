//! A workload's identity: the SPIFFE id `spiffe://<trust-domain>/ns/<namespace>/<app-id>`
//! that its certificate carries in the URI SAN, and that a callee checks
//! before it lets a caller in.
//!
//! Every part is validated on the way in (SPIFFE's rules), so a
//! [`WorkloadIdentity`] that exists always renders to a well-formed id.

use std::fmt;
use std::str::FromStr;

/// The trust domain Dapr uses when none is configured.
pub const DEFAULT_TRUST_DOMAIN: &str = "public";

/// The namespace Dapr uses in self-hosted mode.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The URI scheme of every SPIFFE id.
const SCHEME: &str = "spiffe://";

/// Why a name cannot be part of a SPIFFE id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The trust domain is empty or has a character SPIFFE forbids there.
    #[error(
        "invalid trust domain `{0}`: use lowercase letters, digits, `.`, `-` and `_` (at most 255)"
    )]
    TrustDomain(String),
    /// A path segment (namespace or app id) breaks SPIFFE's path rules.
    #[error(
        "invalid {what} `{value}`: use letters, digits, `.`, `-` and `_`; not empty, `.` or `..`"
    )]
    Segment {
        /// Which part: `namespace` or `app id`.
        what: &'static str,
        /// The value refused.
        value: String,
    },
    /// The string is not of the form `spiffe://<trust-domain>/ns/<namespace>/<app-id>`.
    #[error(
        "`{0}` is not a workload id of the form spiffe://<trust-domain>/ns/<namespace>/<app-id>"
    )]
    Form(String),
}

/// A workload's SPIFFE id, validated part by part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadIdentity {
    trust_domain: String,
    namespace: String,
    app_id: String,
}

impl WorkloadIdentity {
    /// The identity of `app_id` in `namespace` of `trust_domain`, refused when
    /// any part breaks SPIFFE's rules.
    pub fn new(trust_domain: &str, namespace: &str, app_id: &str) -> Result<Self, IdentityError> {
        check_trust_domain(trust_domain)?;
        check_segment("namespace", namespace)?;
        check_segment("app id", app_id)?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            app_id: app_id.to_owned(),
        })
    }

    /// The trust domain: which CA's workloads this one belongs to.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The namespace, which scopes app ids.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The app id, the name callers invoke.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
}

impl fmt::Display for WorkloadIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/ns/{}/{}",
            self.trust_domain, self.namespace, self.app_id
        )
    }
}

impl FromStr for WorkloadIdentity {
    type Err = IdentityError;

    /// Parses `spiffe://<trust-domain>/ns/<namespace>/<app-id>`, the form a
    /// peer's certificate carries.
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let form = || IdentityError::Form(id.to_owned());
        let rest = id.strip_prefix(SCHEME).ok_or_else(form)?;
        let (trust_domain, path) = rest.split_once('/').ok_or_else(form)?;
        let mut segments = path.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(namespace), Some(app_id), None) => {
                Self::new(trust_domain, namespace, app_id)
            }
            _ => Err(form()),
        }
    }
}

/// Refuses a trust domain SPIFFE does not allow (lowercase letters, digits,
/// `.`, `-` and `_`), so a CA is never made for a domain no id can name.
pub fn check_trust_domain(trust_domain: &str) -> Result<(), IdentityError> {
    let valid = !trust_domain.is_empty()
        && trust_domain.len() <= 255
        && trust_domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(IdentityError::TrustDomain(trust_domain.to_owned()))
    }
}

/// SPIFFE: a path segment is letters, digits, `.`, `-` and `_`, neither
/// empty nor a relative step.
fn check_segment(what: &'static str, value: &str) -> Result<(), IdentityError> {
    let valid = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(IdentityError::Segment {
            what,
            value: value.to_owned(),
        })
    }
}
