//! `outrig ca init` and `outrig ca issue`: the mesh's trust root and the
//! workload certificates it signs, written as PEM files an operator hands to
//! sidecars. Private keys are written with mode 0600.
//!
//! Bad input (an id SPIFFE forbids, files that would be overwritten) is
//! refused with one line and exit code 2, like a usage error; failures of
//! the machine (unreadable CA, unwritable directory) exit 1.

use super::{CaInitArgs, CaIssueArgs};
use crate::mesh::{CertificateAuthority, WorkloadIdentity, identity};
use anyhow::Context;
use std::fmt::Display;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// The CA's certificate, in the directory `ca init` writes.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key, next to its certificate.
pub const CA_KEY_FILE: &str = "ca.key";

/// The exit code of refused input, the same as clap's usage errors.
const EXIT_BAD_INPUT: i32 = 2;

/// Creates a self-signed root in `args.out`.
pub fn init(args: &CaInitArgs) -> anyhow::Result<i32> {
    if let Err(err) = identity::check_trust_domain(&args.trust_domain) {
        return Ok(refuse(err));
    }
    let cert_path = args.out.join(CA_CERT_FILE);
    let key_path = args.out.join(CA_KEY_FILE);
    if let Some(code) = refuse_overwrite(&[&cert_path, &key_path], args.force) {
        return Ok(code);
    }
    let validity = Duration::from_secs(args.valid_days * 24 * 3600);
    let ca = CertificateAuthority::generate(&args.trust_domain, validity)?;
    write_pair(
        &args.out,
        (&cert_path, ca.cert_pem()),
        (&key_path, &ca.key_pem()),
        args.force,
    )?;
    println!(
        "wrote {} and {} (trust domain {}, valid {} days)",
        cert_path.display(),
        key_path.display(),
        args.trust_domain,
        args.valid_days
    );
    Ok(0)
}

/// Issues a workload certificate for `args.app_id` from the CA in `args.ca`.
pub fn issue(args: &CaIssueArgs) -> anyhow::Result<i32> {
    let id = match WorkloadIdentity::new(&args.trust_domain, &args.namespace, &args.app_id) {
        Ok(id) => id,
        Err(err) => return Ok(refuse(err)),
    };
    let cert_path = args.out.join(format!("{}.crt", id.app_id()));
    let key_path = args.out.join(format!("{}.key", id.app_id()));
    if let Some(code) = refuse_overwrite(&[&cert_path, &key_path], args.force) {
        return Ok(code);
    }
    let ca = CertificateAuthority::load(&args.ca.join(CA_CERT_FILE), &args.ca.join(CA_KEY_FILE))?;
    let validity = Duration::from_secs(args.valid_hours * 3600);
    let cert = ca.issue(&id, validity)?;
    write_pair(
        &args.out,
        (&cert_path, &cert.cert_pem),
        (&key_path, &cert.key_pem),
        args.force,
    )?;
    println!(
        "wrote {} and {} for {id}, valid until {}",
        cert_path.display(),
        key_path.display(),
        humantime::format_rfc3339_seconds(cert.not_after)
    );
    Ok(0)
}

/// Reports refused input on one line; the exit code to return.
fn refuse(message: impl Display) -> i32 {
    eprintln!("outrig: {message}");
    EXIT_BAD_INPUT
}

/// Refuses (exit code 2) when any of `paths` exists and `force` is off.
fn refuse_overwrite(paths: &[&Path], force: bool) -> Option<i32> {
    let existing = paths.iter().find(|path| path.exists()).filter(|_| !force)?;
    Some(refuse(format!(
        "{} already exists; pass --force to overwrite it",
        existing.display()
    )))
}

/// Writes a certificate (mode 0644) and its key (mode 0600) into `dir`,
/// creating it; with `force` off an existing file is never replaced.
fn write_pair(
    dir: &Path,
    (cert_path, cert_pem): (&Path, &str),
    (key_path, key_pem): (&Path, &str),
    force: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_file(key_path, key_pem, 0o600, force)?;
    write_file(cert_path, cert_pem, 0o644, force)
}

/// Writes `text` to `path` with `mode`, also when the file already existed
/// with another one.
fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(!force)
        .create(force)
        .truncate(force)
        .mode(mode)
        .open(path)
        .with_context(context)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(context)?;
    file.write_all(text.as_bytes()).with_context(context)
}
