//! `outrig ca init` and `outrig ca issue`, the real binary: the files they
//! write (keys 0600), the identity in the issued certificate, and the refusals
//! (overwrite without `--force`, ids SPIFFE forbids) with exit code 2; and
//! `outrig run` issuing itself a certificate from those files.

mod common;

use anyhow::{Context, ensure};
use common::{AppId, Launch};
use outrig::mesh::{CertificateAuthority, WorkloadIdentity, peer_identity};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Runs `outrig ca ARGS…`.
fn ca(args: &[&str]) -> anyhow::Result<Output> {
    std::process::Command::new(common::outrig_bin())
        .arg("ca")
        .args(args)
        .output()
        .context("running outrig ca")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("a UTF-8 temp path")
}

fn mode(path: &Path) -> anyhow::Result<u32> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .permissions()
        .mode()
        & 0o777)
}

#[test]
fn init_then_issue_writes_a_chain_for_the_app() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca_dir = dir.path().join("ca");
    let out_dir = dir.path().join("certs");
    let app = common::unique_name("orders");
    let init = ca(&[
        "init",
        "--out",
        path_str(&ca_dir)?,
        "--trust-domain",
        "example.org",
    ])?;
    ensure!(init.status.success(), "ca init: {init:?}");
    ensure!(mode(&ca_dir.join("ca.key"))? == 0o600, "ca.key is not 0600");

    let issue = ca(&[
        "issue",
        "--ca",
        path_str(&ca_dir)?,
        "--app-id",
        &app,
        "--namespace",
        "shop",
        "--trust-domain",
        "example.org",
        "--valid-hours",
        "2",
        "--out",
        path_str(&out_dir)?,
    ])?;
    ensure!(issue.status.success(), "ca issue: {issue:?}");
    let cert_path = out_dir.join(format!("{app}.crt"));
    ensure!(
        mode(&out_dir.join(format!("{app}.key")))? == 0o600,
        "the key is not 0600"
    );

    let leaf = CertificateDer::from_pem_file(&cert_path)?;
    let expected = WorkloadIdentity::new("example.org", "shop", &app)?;
    ensure!(
        peer_identity(&leaf)? == expected,
        "the leaf carries another id"
    );
    ensure!(
        String::from_utf8_lossy(&issue.stdout).contains(&expected.to_string()),
        "stdout does not name the id: {issue:?}"
    );
    // The written CA (the same files `--issuer-cert`/`--issuer-key` will name)
    // loads and keeps signing.
    let loaded = CertificateAuthority::load(&ca_dir.join("ca.crt"), &ca_dir.join("ca.key"))?;
    loaded.issue(&expected, Duration::from_secs(60))?;
    Ok(())
}

#[test]
fn init_refuses_to_overwrite_without_force() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = path_str(dir.path())?;
    ensure!(ca(&["init", "--out", out])?.status.success(), "first init");
    let first = std::fs::read(dir.path().join("ca.crt"))?;

    let again = ca(&["init", "--out", out])?;
    ensure!(again.status.code() == Some(2), "second init: {again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    ensure!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    ensure!(
        std::fs::read(dir.path().join("ca.crt"))? == first,
        "ca.crt was replaced"
    );

    let forced = ca(&["init", "--out", out, "--force"])?;
    ensure!(forced.status.success(), "forced init: {forced:?}");
    ensure!(
        std::fs::read(dir.path().join("ca.crt"))? != first,
        "ca.crt was kept"
    );
    ensure!(
        mode(&dir.path().join("ca.key"))? == 0o600,
        "ca.key is not 0600"
    );
    Ok(())
}

#[test]
fn bad_input_exits_2_with_one_clear_line() -> anyhow::Result<()> {
    let (dir, ca_dir) = new_ca()?;
    let ca_dir = ca_dir.as_str();
    let issue = |extra: &[&str]| {
        let mut args = vec!["issue", "--ca", ca_dir, "--out", ca_dir];
        args.extend_from_slice(extra);
        ca(&args)
    };
    let cases: &[(&[&str], &str)] = &[
        (&["--app-id", "bad/app"], "invalid app id `bad/app`"),
        (&["--app-id", ".."], "invalid app id `..`"),
        (
            &["--app-id", "ok", "--namespace", ""],
            "invalid namespace ``",
        ),
        (
            &["--app-id", "ok", "--trust-domain", "Upper"],
            "invalid trust domain `Upper`",
        ),
    ];
    for (args, expected) in cases {
        let out = issue(args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(2), "{args:?}: {out:?}");
        ensure!(stderr.trim().lines().count() == 1, "{args:?}: {stderr}");
        ensure!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let bad_domain = ca(&["init", "--out", ca_dir, "--force", "--trust-domain", "a b"])?;
    ensure!(bad_domain.status.code() == Some(2), "{bad_domain:?}");

    let no_ca = ca(&[
        "issue",
        "--ca",
        path_str(&dir.path().join("missing"))?,
        "--app-id",
        "ok",
        "--out",
        ca_dir,
    ])?;
    let stderr = String::from_utf8_lossy(&no_ca.stderr);
    ensure!(no_ca.status.code() == Some(1), "{no_ca:?}");
    ensure!(
        stderr.contains("cannot read") && stderr.contains("ca.crt"),
        "{stderr}"
    );
    Ok(())
}

/// `ca init` into a fresh directory; the directory's guard and path.
fn new_ca() -> anyhow::Result<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir()?;
    let path = path_str(dir.path())?.to_owned();
    let init = ca(&["init", "--out", &path])?;
    ensure!(init.status.success(), "ca init: {init:?}");
    Ok((dir, path))
}

#[tokio::test]
async fn run_issues_itself_a_certificate_from_the_ca_on_disk() -> anyhow::Result<()> {
    let (_dir, ca_dir) = new_ca()?;
    let app = AppId::new("mtls-self");
    let crt = format!("{ca_dir}/ca.crt");
    let key = format!("{ca_dir}/ca.key");
    let sidecar = Launch::new(&app)
        .env("NAMESPACE", "shop")
        .args(&[
            "--trust-anchors",
            &crt,
            "--issuer-cert",
            &crt,
            "--issuer-key",
            &key,
        ])
        .start()
        .await?;
    let logs = sidecar.logs();
    let expected = format!("spiffe://public/ns/shop/{}", app.as_str());
    ensure!(
        logs.contains("issued the workload certificate") && logs.contains(&expected),
        "no self-issued certificate for {expected} in:\n{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn run_refuses_an_issuer_its_trust_anchors_do_not_trust() -> anyhow::Result<()> {
    let (_issuer, issuer_dir) = new_ca()?;
    let (_other, other_dir) = new_ca()?;
    let app = AppId::new("mtls-mismatch");
    let (status, output) = Launch::new(&app)
        .args(&[
            "--trust-anchors",
            &format!("{other_dir}/ca.crt"),
            "--issuer-cert",
            &format!("{issuer_dir}/ca.crt"),
            "--issuer-key",
            &format!("{issuer_dir}/ca.key"),
        ])
        .run_to_exit()
        .await?;
    ensure!(!status.success(), "outrig started: {output}");
    ensure!(
        output.contains("is not trusted by the trust anchors"),
        "{output}"
    );

    let (status, output) = Launch::new(&app)
        .args(&["--issuer-cert", &format!("{issuer_dir}/ca.crt")])
        .run_to_exit()
        .await?;
    ensure!(status.code() == Some(2), "a lone --issuer-cert: {output}");
    ensure!(output.contains("--trust-anchors"), "{output}");
    Ok(())
}
