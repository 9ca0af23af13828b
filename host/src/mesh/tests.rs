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
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::client::TlsStream as ClientStream;
use tokio_rustls::server::TlsStream as ServerStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
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

/// Credentials for `app_id` from `ca`, valid an hour.
fn credentials(ca: &CertificateAuthority, app_id: &str) -> Arc<WorkloadCredentials> {
    let ca = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).expect("a CA copy");
    let creds = WorkloadCredentials::issue(ca, identity(app_id), HOUR, provider());
    Arc::new(creds.expect("credentials"))
}

/// The TLS configurations of a caller (client) and a callee (server), both
/// trusting `ca`, presenting their credentials, the server demanding a
/// client certificate.
fn tls_pair(
    ca: &CertificateAuthority,
    client: Arc<WorkloadCredentials>,
    server: Arc<WorkloadCredentials>,
) -> (TlsConnector, TlsAcceptor) {
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots(ca))
        .with_client_cert_resolver(client);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .expect("a verifier");
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(server);
    (
        TlsConnector::from(Arc::new(client_config)),
        TlsAcceptor::from(Arc::new(server_config)),
    )
}

/// A mutual-TLS connection over an in-memory pipe (the server is `orders`);
/// `Err` when either side refuses.
async fn connect(
    connector: &TlsConnector,
    acceptor: &TlsAcceptor,
) -> Result<(ClientStream<DuplexStream>, ServerStream<DuplexStream>), String> {
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let name = ServerName::try_from("orders").expect("a DNS name");
    let (client, server) = tokio::join!(
        connector.connect(name, client_io),
        acceptor.accept(server_io)
    );
    Ok((
        client.map_err(|e| format!("client: {e}"))?,
        server.map_err(|e| format!("server: {e}"))?,
    ))
}

/// Sends `message` from client to server on an established connection.
async fn exchange(
    client: &mut ClientStream<DuplexStream>,
    server: &mut ServerStream<DuplexStream>,
    message: &[u8],
) -> Vec<u8> {
    client.write_all(message).await.expect("write");
    client.flush().await.expect("flush");
    let mut received = vec![0; message.len()];
    server.read_exact(&mut received).await.expect("read");
    received
}

#[tokio::test]
async fn mutual_tls_carries_the_callers_identity() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let (connector, acceptor) = tls_pair(
        &ca,
        credentials(&ca, "checkout"),
        credentials(&ca, "orders"),
    );
    let (mut client, mut server) = connect(&connector, &acceptor).await.expect("a handshake");
    let peer = server
        .get_ref()
        .1
        .peer_certificates()
        .expect("a client certificate");
    assert_eq!(
        peer_identity(&peer[0]).expect("an id"),
        identity("checkout")
    );
    assert_eq!(exchange(&mut client, &mut server, b"hello").await, b"hello");
}

#[tokio::test]
async fn mutual_tls_refuses_a_caller_from_another_ca() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let other = CertificateAuthority::generate("public", DAY).expect("another CA");
    let (connector, acceptor) = tls_pair(
        &ca,
        credentials(&other, "intruder"),
        credentials(&ca, "orders"),
    );
    let refused = connect(&connector, &acceptor).await.map(|_| ());
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn renewal_swaps_the_certificate_and_keeps_open_connections() {
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let server = credentials(&ca, "orders");
    let (connector, acceptor) = tls_pair(&ca, credentials(&ca, "checkout"), server.clone());
    let (mut client, mut open) = connect(&connector, &acceptor).await.expect("a handshake");
    let first = server.certified_key().cert[0].clone();
    assert!(server.renew_at() < server.not_after());

    // Paused time: each sleep jumps the clock, so the renewal two thirds into
    // the hour comes at once.
    let renewal = tokio::spawn(server.clone().keep_renewed());
    for _ in 0..120 {
        if server.certified_key().cert[0] != first {
            break;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    renewal.abort();
    let renewed = server.certified_key().cert[0].clone();
    assert_ne!(renewed, first, "the certificate was not renewed");
    assert_eq!(peer_identity(&renewed).expect("an id"), identity("orders"));

    assert_eq!(
        exchange(&mut client, &mut open, b"still up").await,
        b"still up"
    );
    let (next, _) = connect(&connector, &acceptor)
        .await
        .expect("a new handshake");
    let presented = next
        .get_ref()
        .1
        .peer_certificates()
        .expect("a server certificate");
    assert_eq!(presented[0], renewed);
}

#[test]
fn self_issue_checks_the_issuer_against_the_trust_anchors() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let ca = CertificateAuthority::generate("public", DAY).expect("a CA");
    let other = CertificateAuthority::generate("public", DAY).expect("another CA");
    let files = |anchors: std::path::PathBuf| IssuerFiles {
        trust_anchors: anchors,
        issuer_cert: write("ca.crt", ca.cert_pem()),
        issuer_key: write("ca.key", &ca.key_pem()),
    };
    let bundle = format!("{}{}", other.cert_pem(), ca.cert_pem());
    let issued = self_issue(
        &files(write("bundle.crt", &bundle)),
        identity("orders"),
        provider(),
    )
    .expect("trusted by the bundle");
    assert_eq!(issued.identity(), &identity("orders"));
    assert!(issued.not_after() > std::time::SystemTime::now());

    let cases = [
        (write("other.crt", other.cert_pem()), "is not trusted"),
        (write("empty.crt", ""), "no PEM certificate"),
        (dir.path().join("missing.crt"), "trust anchors"),
    ];
    for (anchors, expected) in cases {
        let err = self_issue(&files(anchors), identity("orders"), provider())
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(err.contains(expected), "`{err}`");
    }
}
