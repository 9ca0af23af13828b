//! The sidecar's own workload certificate (issued at start from the issuer
//! files on disk), held where TLS reads it at every handshake and replaced
//! before it expires.
//!
//! Renewal swaps the certificate in place: connections already established
//! keep the session they negotiated, and the next handshake (either side:
//! [`WorkloadCredentials`] resolves both server and client certificates)
//! presents the new one. Nothing restarts and nothing is dropped.

use super::ca::{CaError, CertificateAuthority};
use super::identity::WorkloadIdentity;
use arc_swap::ArcSwap;
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long to wait before trying again when a renewal fails (the current
/// certificate keeps serving meanwhile).
pub const RENEWAL_RETRY: Duration = Duration::from_secs(30);

/// Why a workload certificate could not be made usable.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The CA could not issue it.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// rustls refused the issued key.
    #[error("the issued key is not usable for TLS: {0}")]
    Key(#[from] rustls::Error),
}

/// One issued certificate, ready for rustls.
struct Current {
    certified: Arc<CertifiedKey>,
    issued_at: SystemTime,
    not_after: SystemTime,
}

/// A workload's certificate, reissued by its CA before each one expires.
pub struct WorkloadCredentials {
    current: ArcSwap<Current>,
    ca: CertificateAuthority,
    identity: WorkloadIdentity,
    validity: Duration,
    provider: Arc<CryptoProvider>,
}

impl WorkloadCredentials {
    /// Issues the first certificate for `identity`, valid for `validity`,
    /// with keys loaded through `provider`.
    pub fn issue(
        ca: CertificateAuthority,
        identity: WorkloadIdentity,
        validity: Duration,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, CredentialsError> {
        let current = issue_one(&ca, &identity, validity, &provider)?;
        Ok(Self {
            current: ArcSwap::from_pointee(current),
            ca,
            identity,
            validity,
            provider,
        })
    }

    /// Whose certificate this is.
    pub fn identity(&self) -> &WorkloadIdentity {
        &self.identity
    }

    /// The certificate chain and key TLS presents now.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.current.load().certified.clone()
    }

    /// When the current certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.current.load().not_after
    }

    /// When the current certificate should be replaced: two thirds into its
    /// life, leaving a third to retry a failing CA before peers refuse it.
    pub fn renew_at(&self) -> SystemTime {
        let current = self.current.load();
        let life = current
            .not_after
            .duration_since(current.issued_at)
            .unwrap_or_default();
        current
            .issued_at
            .checked_add(life * 2 / 3)
            .unwrap_or(current.not_after)
    }

    /// Issues a fresh certificate and swaps it in; on failure the current one stays.
    pub fn renew(&self) -> Result<(), CredentialsError> {
        let next = issue_one(&self.ca, &self.identity, self.validity, &self.provider)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Renews at every [`renew_at`](Self::renew_at), for as long as the task
    /// runs; a failed renewal is logged and retried after [`RENEWAL_RETRY`].
    pub async fn keep_renewed(self: Arc<Self>) {
        loop {
            let wait = self
                .renew_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            match self.renew() {
                Ok(()) => tracing::info!(
                    spiffe_id = %self.identity,
                    not_after = %humantime::format_rfc3339_seconds(self.not_after()),
                    "renewed the workload certificate"
                ),
                Err(err) => {
                    tracing::warn!(spiffe_id = %self.identity, "cannot renew the workload certificate: {err}");
                    tokio::time::sleep(RENEWAL_RETRY).await;
                }
            }
        }
    }
}

impl fmt::Debug for WorkloadCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadCredentials")
            .field("identity", &self.identity.to_string())
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for WorkloadCredentials {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for WorkloadCredentials {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// One certificate from `ca`, its key loaded for rustls.
fn issue_one(
    ca: &CertificateAuthority,
    identity: &WorkloadIdentity,
    validity: Duration,
    provider: &CryptoProvider,
) -> Result<Current, CredentialsError> {
    let issued_at = SystemTime::now();
    let cert = ca.issue(identity, validity)?;
    Ok(Current {
        certified: Arc::new(CertifiedKey::from_der(cert.chain, cert.key, provider)?),
        issued_at,
        not_after: cert.not_after,
    })
}
