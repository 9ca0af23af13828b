//! A sidecar issuing itself its workload certificate at start (self-hosted
//! mode: `outrig run --trust-anchors … --issuer-cert … --issuer-key …`), from
//! a CA on disk, checked against the trust anchors it will verify peers with,
//! so a mismatched issuer and anchors stop the start instead of failing
//! every handshake later.

use super::ca::{CaError, CertificateAuthority};
use super::credentials::{CredentialsError, WorkloadCredentials};
use super::identity::WorkloadIdentity;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a self-issued certificate lives (Dapr's workload default);
/// it is renewed two thirds in.
pub const SELF_ISSUED_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Where a sidecar's CA and trust anchors are on disk.
#[derive(Debug, Clone)]
pub struct IssuerFiles {
    /// PEM bundle of the CA certificates peers are verified against.
    pub trust_anchors: PathBuf,
    /// PEM certificate of the CA that signs this sidecar's certificate.
    pub issuer_cert: PathBuf,
    /// PEM private key of that CA.
    pub issuer_key: PathBuf,
}

/// Why a sidecar could not issue itself a certificate.
#[derive(Debug, thiserror::Error)]
pub enum SelfIssueError {
    /// The trust anchors file is unreadable or holds no certificate.
    #[error("trust anchors {path}: {reason}")]
    Anchors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA files are unusable.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The certificate could not be issued or loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The issued certificate does not chain to the trust anchors.
    #[error(
        "the certificate the issuer signs is not trusted by the trust anchors {path}: {reason}"
    )]
    Untrusted {
        /// The trust anchors file.
        path: PathBuf,
        /// What the verifier said.
        reason: String,
    },
}

/// The credentials of `identity`, issued by the CA in `files` and verified
/// against its trust anchors.
pub fn self_issue(
    files: &IssuerFiles,
    identity: WorkloadIdentity,
    provider: Arc<CryptoProvider>,
) -> Result<WorkloadCredentials, SelfIssueError> {
    let anchors = trust_anchors(&files.trust_anchors)?;
    let ca = CertificateAuthority::load(&files.issuer_cert, &files.issuer_key)?;
    let credentials =
        WorkloadCredentials::issue(ca, identity, SELF_ISSUED_VALIDITY, provider.clone())?;
    let untrusted = |reason: String| SelfIssueError::Untrusted {
        path: files.trust_anchors.clone(),
        reason,
    };
    let verifier = WebPkiClientVerifier::builder_with_provider(anchors, provider)
        .build()
        .map_err(|err| untrusted(err.to_string()))?;
    let certified = credentials.certified_key();
    let (leaf, intermediates) = certified
        .cert
        .split_first()
        .ok_or_else(|| untrusted("an empty chain".into()))?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|err| untrusted(err.to_string()))?;
    Ok(credentials)
}

/// Every certificate in the PEM bundle at `path`, as trust anchors.
pub fn trust_anchors(path: &Path) -> Result<Arc<RootCertStore>, SelfIssueError> {
    let invalid = |reason: String| SelfIssueError::Anchors {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| invalid(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(err.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|err| invalid(err.to_string()))?;
    }
    Ok(Arc::new(roots))
}
