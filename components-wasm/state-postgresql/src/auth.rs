//! Password authentication the server may ask for: MD5, and SCRAM-SHA-256
//! (RFC 5802 with RFC 7677's hash, without channel binding). Cleartext needs
//! no code of its own. Pure computation, tested with the RFCs' vectors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io;

/// The SASL mechanism this client implements.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// More PBKDF2 rounds than this are refused: the server chooses the count,
/// and a hostile one could otherwise pin the instance (PostgreSQL uses 4096).
const MAX_ITERATIONS: u32 = 1_000_000;

/// The answer to `AuthenticationMD5Password`:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
pub fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize());
    let outer = Md5::new().chain_update(inner).chain_update(salt).finalize();
    format!("md5{}", hex(&outer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One SCRAM-SHA-256 exchange, from the client's first message to checking
/// the server's signature (which proves the server knew the password too).
#[derive(Debug)]
pub struct Scram {
    password: String,
    nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// Starts an exchange with a fresh random nonce. PostgreSQL takes the user
    /// from the startup message, so the SCRAM user name is left empty.
    pub fn new(password: &str) -> io::Result<Self> {
        let mut random = [0u8; 18];
        getrandom::fill(&mut random)
            .map_err(|err| io::Error::other(format!("no randomness for SCRAM: {err}")))?;
        Ok(Scram::with_nonce("", password, &BASE64.encode(random)))
    }

    /// Starts an exchange with a given user name and nonce (for test vectors).
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> Self {
        Scram {
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={user},r={nonce}"),
            expected_server_signature: None,
        }
    }

    /// The client-first message (no channel binding: GS2 header `n,,`).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &str) -> io::Result<String> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => {
                    salt = Some(
                        BASE64
                            .decode(value)
                            .map_err(|_| scram_error("salt is not base64"))?,
                    )
                }
                Some(("i", value)) => iterations = value.parse::<u32>().ok(),
                Some(("m", _)) => return Err(scram_error("mandatory extension not supported")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(scram_error("server-first message lacks r, s or i"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(scram_error("server nonce does not extend ours"));
        }
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(scram_error("iteration count out of range"));
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message's signature.
    pub fn verify_server_final(&self, server_final: &str) -> io::Result<()> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(scram_error(&format!("server reports {error}")));
        }
        let signature = server_final
            .split(',')
            .find_map(|attribute| attribute.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok());
        match (signature, &self.expected_server_signature) {
            (Some(got), Some(expected)) if &got == expected => Ok(()),
            _ => Err(scram_error(
                "the server's signature does not match: it does not know the password",
            )),
        }
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn scram_error(message: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("SCRAM-SHA-256: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3.
    #[test]
    fn scram_follows_the_rfc_vector() {
        let mut scram = Scram::with_nonce("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            scram.client_final(server_first).ok().as_deref(),
            Some(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            )
        );
        assert!(
            scram
                .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_ok()
        );
        assert!(
            scram
                .verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(scram.verify_server_final("e=invalid-proof").is_err());
    }

    #[test]
    fn scram_refuses_suspicious_servers() {
        let cases = [
            "r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=abcdef,s=***,i=4096",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "m=ext,r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ];
        for server_first in cases {
            let mut scram = Scram::with_nonce("", "pw", "abc");
            assert!(scram.client_final(server_first).is_err(), "{server_first}");
        }
        let unverified = Scram::with_nonce("", "pw", "abc");
        assert!(unverified.verify_server_final("v=AAAA").is_err());
    }

    #[test]
    fn random_nonces_differ() {
        let (a, b) = (Scram::new("pw"), Scram::new("pw"));
        let (a, b) = (
            a.expect("random").client_first(),
            b.expect("random").client_first(),
        );
        assert_ne!(a, b);
        assert!(a.starts_with("n,,n=,r=") && a.len() == "n,,n=,r=".len() + 24);
    }

    #[test]
    fn md5_matches_postgres() {
        // SELECT 'md5' || md5(md5('secret' || 'alice') || 'abcd') on a real server.
        assert_eq!(
            md5_password("alice", "secret", b"abcd"),
            "md5c90bcafc0a2b54511742383e34d5dc9d"
        );
    }
}
