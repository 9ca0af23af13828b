//! The service mesh: who a workload is and how it proves it. Today that is
//! the certificate authority (`outrig ca`), workload identities (SPIFFE ids
//! in X.509 certificates) and a workload's own certificate kept renewed;
//! service invocation over mTLS builds on it.
//!
//! This module knows nothing of Dapr's API or of wasmtime.

pub mod ca;
pub mod credentials;
pub mod identity;
pub mod peer;
pub mod self_issued;

pub use ca::{CaError, CertificateAuthority, PemError, PemFile, WorkloadCertificate};
pub use credentials::{CredentialsError, WorkloadCredentials};
pub use identity::{IdentityError, WorkloadIdentity};
pub use peer::{PeerIdentityError, peer_identity};
pub use self_issued::{IssuerFiles, SelfIssueError, self_issue};

#[cfg(test)]
mod tests;
