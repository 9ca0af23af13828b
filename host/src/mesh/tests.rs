//! The CA and identities checked the way a peer would: x509-parser reads the
//! certificates, rustls's WebPKI verifiers judge the chains, and a real TLS
//! handshake (both sides authenticated) carries the caller's SPIFFE id.

use super::ca::CLOCK_SKEW;
use super::*;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::extensions::GeneralName;

const DAY: Duration = Duration::from_secs(24 * 3600);
const HOUR: Duration = Duration::from_secs(3600);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateAuthority) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.cert_der().clone())
        .expect("the CA is a valid anchor");
    Arc::new(roots)
}

fn identity(app_id: &str) -> WorkloadIdentity {
    WorkloadIdentity::new("public", "default", app_id).expect("a valid id")
}

/// Whether `ca`'s trust anchor accepts `cert` as a client certificate now.
fn accepted_by(ca: &CertificateAuthority, cert: &WorkloadCertificate) -> bool {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .expect("a verifier");
    verifier
        .verify_client_cert(&cert.chain[0], &cert.chain[1..], UnixTime::now())
        .is_ok()
}

#[test]
fn identities_parse_and_render_by_spiffe_rules() {
    let cases: &[(&str, bool)] = &[
        ("spiffe://public/ns/default/orders", true),
        ("spiffe://example.org/ns/prod-1/cart_v2.api", true),
        ("spiffe://Public/ns/default/orders", false),
        ("spiffe://pub lic/ns/default/orders", false),
        ("spiffe:///ns/default/orders", false),
        ("spiffe://public/ns/default/", false),
        ("spiffe://public/ns/../orders", false),
        ("spiffe://public/ns/default/.", false),
        ("spiffe://public/ns/default/or/ders", false),
        ("spiffe://public/ns/default/or%20ders", false),
        ("spiffe://public/default/orders", false),
        ("https://public/ns/default/orders", false),
        ("spiffe://public", false),
        ("", false),
    ];
    for (id, valid) in cases {
        let parsed = id.parse::<WorkloadIdentity>();
        assert_eq!(parsed.is_ok(), *valid, "{id}: {parsed:?}");
        if let Ok(parsed) = parsed {
            assert_eq!(parsed.to_string(), *id);
        }
    }
    let id = identity("orders");
    assert_eq!(
        (id.trust_domain(), id.namespace(), id.app_id()),
        ("public", "default", "orders")
    );
    for (trust_domain, namespace, app_id) in [
        ("public", "default", "bad/app"),
        ("public", "", "orders"),
        ("UPPER", "default", "orders"),
        ("public", "default", ".."),
    ] {
        assert!(WorkloadIdentity::new(trust_domain, namespace, app_id).is_err());
    }
}

#[test]
fn the_leaf_carries_the_identity_and_the_asked_validity() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let id = identity("orders");
    let cert = ca.issue(&id, 2 * HOUR).expect("a leaf");
    assert_eq!(peer_identity(&cert.chain[0]).expect("an id"), id);

    let (_, leaf) = x509_parser::parse_x509_certificate(&cert.chain[0]).expect("X.509");
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .expect("SAN")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::URI(uri) => format!("uri:{uri}"),
            GeneralName::DNSName(dns) => format!("dns:{dns}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        ["uri:spiffe://public/ns/default/orders", "dns:orders"]
    );
    let eku = leaf
        .extended_key_usage()
        .expect("EKU")
        .expect("EKU present");
    assert!(eku.value.server_auth && eku.value.client_auth);
    assert!(!leaf.is_ca());

    let validity = leaf.validity();
    let span = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(span, (2 * HOUR + CLOCK_SKEW).as_secs() as i64);
    let not_after = cert
        .not_after
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert_eq!(validity.not_after.timestamp(), not_after as i64);

    let (_, root) = x509_parser::parse_x509_certificate(ca.cert_der()).expect("X.509");
    assert!(root.is_ca());
    assert!(
        root.key_usage()
            .expect("KU")
            .expect("KU present")
            .value
            .key_cert_sign()
    );
}

#[test]
fn a_chain_verifies_only_against_its_own_root() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let other = CertificateAuthority::generate("public", DAY).expect("another CA");
    let cert = ca.issue(&identity("orders"), HOUR).expect("a leaf");
    assert!(accepted_by(&ca, &cert));
    assert!(!accepted_by(&other, &cert));
}

#[test]
fn a_ca_loaded_from_its_files_issues_what_its_root_accepts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let other = CertificateAuthority::generate("public", DAY).expect("another CA");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let cert_path = write("ca.crt", ca.cert_pem());
    let key_path = write("ca.key", &ca.key_pem());
    let loaded = CertificateAuthority::load(&cert_path, &key_path).expect("loads");
    let cert = loaded.issue(&identity("cart"), HOUR).expect("a leaf");
    assert!(accepted_by(&ca, &cert));

    let leaf = ca.issue(&identity("cart"), HOUR).expect("a leaf");
    let cases = [
        (
            cert_path.clone(),
            write("other.key", &other.key_pem()),
            "does not belong",
        ),
        (
            write("leaf.crt", &leaf.cert_pem),
            write("leaf.key", &leaf.key_pem),
            "not a CA",
        ),
        (
            write("junk.crt", "not pem"),
            key_path.clone(),
            "no PEM certificate",
        ),
        (
            cert_path.clone(),
            write("junk.key", "not pem"),
            "no usable PEM private key",
        ),
        (
            dir.path().join("missing.crt"),
            key_path.clone(),
            "cannot read",
        ),
    ];
    for (cert, key, expected) in cases {
        let err = CertificateAuthority::load(&cert, &key)
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(err.contains(expected), "{}: `{err}`", cert.display());
    }
}

#[test]
fn a_certificate_without_a_spiffe_id_has_no_identity() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
    assert!(matches!(
        peer_identity(cert.cert.der()),
        Err(PeerIdentityError::Missing)
    ));
    assert!(matches!(
        peer_identity(&CertificateDer::from(vec![1, 2, 3])),
        Err(PeerIdentityError::Parse(_))
    ));
}

/// The TLS configurations of a caller (client) and a callee (server), both
/// trusting `ca` and the server demanding a client certificate.
fn tls_pair(
    ca: &CertificateAuthority,
    client: WorkloadCertificate,
    server: WorkloadCertificate,
) -> (tokio_rustls::TlsConnector, tokio_rustls::TlsAcceptor) {
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots(ca))
        .with_client_auth_cert(client.chain, client.key)
        .expect("a client config");
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .expect("a verifier");
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(server.chain, server.key)
        .expect("a server config");
    (
        tokio_rustls::TlsConnector::from(Arc::new(client_config)),
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
    )
}

/// Runs one mutual-TLS exchange over an in-memory pipe; the server answers
/// with the caller's SPIFFE id. `Err` when either side refuses.
async fn handshake(
    connector: tokio_rustls::TlsConnector,
    acceptor: tokio_rustls::TlsAcceptor,
) -> Result<(WorkloadIdentity, String), String> {
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let server = tokio::spawn(async move {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let (_, session) = tls.get_ref();
        let peer = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .ok_or("no client certificate")?;
        let caller = peer_identity(peer).map_err(|e| e.to_string())?;
        tls.write_all(caller.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(caller)
    });
    let name = ServerName::try_from("orders").expect("a DNS name");
    let client = async {
        let mut tls = connector
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        tls.read_to_string(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(answer)
    };
    let answer = client.await;
    let caller = server.await.map_err(|e| e.to_string())?;
    Ok((caller?, answer?))
}

#[tokio::test]
async fn mutual_tls_carries_the_callers_identity() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let caller = identity("checkout");
    let client = ca.issue(&caller, HOUR).expect("a client leaf");
    let server = ca.issue(&identity("orders"), HOUR).expect("a server leaf");
    let (connector, acceptor) = tls_pair(&ca, client, server);
    let (seen, answer) = handshake(connector, acceptor).await.expect("a handshake");
    assert_eq!(seen, caller);
    assert_eq!(answer, "spiffe://public/ns/default/checkout");
}

#[tokio::test]
async fn mutual_tls_refuses_a_caller_from_another_ca() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let other = CertificateAuthority::generate("public", DAY).expect("another CA");
    let client = other
        .issue(&identity("intruder"), HOUR)
        .expect("a client leaf");
    let server = ca.issue(&identity("orders"), HOUR).expect("a server leaf");
    let (connector, acceptor) = tls_pair(&ca, client, server);
    let refused = handshake(connector, acceptor).await;
    assert!(refused.is_err(), "{refused:?}");
}
