//! Who is calling: the [`WorkloadIdentity`] in a peer certificate's URI SAN,
//! read after the TLS handshake has verified the chain, so the callee can
//! check the caller's SPIFFE id (access control, logs).

use super::identity::{IdentityError, WorkloadIdentity};
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// Why a peer certificate carries no usable workload identity.
#[derive(Debug, thiserror::Error)]
pub enum PeerIdentityError {
    /// The bytes are not an X.509 certificate.
    #[error("the peer certificate cannot be parsed: {0}")]
    Parse(String),
    /// No `spiffe://` URI SAN.
    #[error("the peer certificate carries no SPIFFE id")]
    Missing,
    /// More than one `spiffe://` URI SAN (an X.509-SVID has exactly one).
    #[error("the peer certificate carries {0} SPIFFE ids; exactly one is allowed")]
    Ambiguous(usize),
    /// The SPIFFE id is not a workload id of Outrig's form.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// The workload identity of the peer whose (already verified) leaf
/// certificate is `cert`.
pub fn peer_identity(cert: &CertificateDer<'_>) -> Result<WorkloadIdentity, PeerIdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert)
        .map_err(|err| PeerIdentityError::Parse(err.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|err| PeerIdentityError::Parse(err.to_string()))?;
    let ids: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
            _ => None,
        })
        .collect();
    match ids.as_slice() {
        [] => Err(PeerIdentityError::Missing),
        [id] => Ok(id.parse()?),
        many => Err(PeerIdentityError::Ambiguous(many.len())),
    }
}
