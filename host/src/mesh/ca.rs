//! The certificate authority of the mesh: a trust root made once
//! (`outrig ca init`), and short-lived workload certificates it signs for one
//! [`WorkloadIdentity`] each (`outrig ca issue`, or a sidecar issuing itself
//! one at start from the issuer files on disk).
//!
//! Keys are ECDSA P-256, certificates X.509 v3 signed by rcgen; the workload's
//! SPIFFE id is the leaf's only URI SAN, as the X.509-SVID format asks.

use super::identity::WorkloadIdentity;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// How far back a workload certificate's validity starts, so a peer whose
/// clock runs a little behind still accepts it.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why the CA could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused to build or sign a certificate.
    #[error("cannot sign the certificate: {0}")]
    Sign(#[from] rcgen::Error),
    /// A CA file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A CA file is not what it should be (PEM, a CA certificate, its key).
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The validity asked for does not fit in a certificate.
    #[error("a validity of {0:?} is out of range")]
    Validity(Duration),
}

/// Which of a CA's two PEM inputs is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    /// The certificate.
    Cert,
    /// The private key.
    Key,
}

/// Why a CA's PEM certificate or key is refused, and which of the two.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct PemError {
    /// The input at fault.
    pub file: PemFile,
    /// What is wrong with it.
    pub reason: String,
}

impl PemError {
    /// A fault of the certificate.
    fn cert(reason: String) -> Self {
        Self {
            file: PemFile::Cert,
            reason,
        }
    }
}

/// A CA that can sign workload certificates: its certificate and signing key.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

/// A workload certificate, in the forms both the files and rustls need.
pub struct WorkloadCertificate {
    /// The leaf, then the certificate of the CA that signed it (so a peer
    /// trusting only a root above an intermediate issuer can still build the chain).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
    /// The leaf alone, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// When the leaf stops being valid: renew before this.
    pub not_after: SystemTime,
}

impl CertificateAuthority {
    /// A new self-signed root for `trust_domain`, valid for `validity` from now.
    pub fn generate(trust_domain: &str, validity: Duration) -> Result<Self, CaError> {
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Outrig CA ({trust_domain})"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, trust_domain);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        (params.not_before, params.not_after) = valid_from(now, validity)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA whose certificate and key are in these PEM files (the root
    /// `ca init` wrote, or an intermediate given as `--issuer-cert`/`--issuer-key`).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CaError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CaError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
        Self::from_pem(&cert_pem, &key_pem).map_err(|err| CaError::Invalid {
            path: match err.file {
                PemFile::Cert => cert_path,
                PemFile::Key => key_path,
            }
            .to_owned(),
            reason: err.reason,
        })
    }

    /// The CA from its certificate and private key, PEM (kept in memory
    /// or a secret store rather than files).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PemError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|err| PemError::cert(format!("no PEM certificate: {err}")))?;
        let key = KeyPair::from_pem(key_pem).map_err(|err| PemError {
            file: PemFile::Key,
            reason: format!("no usable PEM private key: {err}"),
        })?;
        check_issuer(&cert_der, &key).map_err(PemError::cert)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|err| PemError::cert(err.to_string()))?;
        Ok(Self {
            issuer,
            cert_der,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA's certificate: the trust anchor workloads are given.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PKCS#8 PEM (to be written with mode 0600).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate for `identity`, valid from a little before now (see
    /// [`CLOCK_SKEW`]) for `validity`, with a fresh key: the SPIFFE id as URI
    /// SAN, the app id as DNS SAN, usable as TLS server and client, not a CA.
    pub fn issue(
        &self,
        identity: &WorkloadIdentity,
        validity: Duration,
    ) -> Result<WorkloadCertificate, CaError> {
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, identity.app_id());
        params.subject_alt_names = vec![
            SanType::URI(identity.to_string().try_into()?),
            SanType::DnsName(identity.app_id().try_into()?),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = valid_from(now, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(WorkloadCertificate {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after.into(),
        })
    }
}

/// The validity window: from [`CLOCK_SKEW`] before `now` to `validity`
/// after it, refused when it does not fit in a date.
fn valid_from(
    now: OffsetDateTime,
    validity: Duration,
) -> Result<(OffsetDateTime, OffsetDateTime), CaError> {
    let out_of_range = || CaError::Validity(validity);
    let span = time::Duration::try_from(validity).map_err(|_| out_of_range())?;
    let not_after = now.checked_add(span).ok_or_else(out_of_range)?;
    Ok((now - CLOCK_SKEW, not_after))
}

/// Refuses an issuer certificate that is not a CA allowed to sign
/// certificates, or whose public key is not `key`'s.
fn check_issuer(cert_der: &CertificateDer<'_>, key: &KeyPair) -> Result<(), String> {
    use rcgen::PublicKeyData;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|err| format!("not an X.509 certificate: {err}"))?;
    let is_ca = cert
        .basic_constraints()
        .map_err(|err| err.to_string())?
        .is_some_and(|ext| ext.value.ca);
    if !is_ca {
        return Err("not a CA certificate (basicConstraints CA:true is missing)".into());
    }
    let can_sign = cert
        .key_usage()
        .map_err(|err| err.to_string())?
        .is_none_or(|ext| ext.value.key_cert_sign());
    if !can_sign {
        return Err("its key usage does not allow signing certificates".into());
    }
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err("the private key does not belong to this certificate".into());
    }
    Ok(())
}
