//! Kalshi's request signing. Every signed request, the WebSocket handshake included,
//! carries three headers: `KALSHI-ACCESS-KEY` (the key's id), `KALSHI-ACCESS-TIMESTAMP`
//! (Unix milliseconds) and `KALSHI-ACCESS-SIGNATURE`: base64 of an RSA-PSS signature
//! (SHA-256, MGF1 SHA-256, salt as long as the digest) over `timestamp + METHOD +
//! path`, the path without its query string. Kalshi refuses an unsigned or badly
//! signed WebSocket handshake with HTTP 401.
//!
//! [`Signer`] signs with a private key (PEM, PKCS#8 or PKCS#1); [`Verifier`] checks
//! with the public key, as the mock Kalshi does.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

pub const KEY_HEADER: &str = "KALSHI-ACCESS-KEY";
pub const TIMESTAMP_HEADER: &str = "KALSHI-ACCESS-TIMESTAMP";
pub const SIGNATURE_HEADER: &str = "KALSHI-ACCESS-SIGNATURE";

/// How far a signed timestamp may be from the verifier's clock.
pub const MAX_SKEW_MS: i64 = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0}: not a PEM private key (expected PKCS#8 \"PRIVATE KEY\" or PKCS#1 \"RSA PRIVATE KEY\")"
    )]
    NotPrivatePem(String),
    #[error("{0}: not a PEM public key (expected \"PUBLIC KEY\")")]
    NotPublicPem(String),
    #[error("{what}: not an RSA key Kalshi can use: {why}")]
    NotRsa { what: String, why: String },
}

/// Signs Kalshi requests with one API key.
pub struct Signer {
    key_id: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Signer {
    /// A signer for `key_id` from a PEM private key; `what` names the key in errors.
    pub fn from_pem(key_id: &str, pem: &[u8], what: &str) -> Result<Signer, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|_| KeyError::NotPrivatePem(what.to_owned()))?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(KeyError::NotRsa {
                    what: what.to_owned(),
                    why: "an elliptic-curve key".into(),
                });
            }
        }
        .map_err(|e| KeyError::NotRsa {
            what: what.to_owned(),
            why: e.to_string(),
        })?;
        Ok(Signer {
            key_id: key_id.to_owned(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// A signer for `key_id` from the PEM file at `path`.
    pub fn load(key_id: &str, path: &Path) -> Result<Signer, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Signer::from_pem(key_id, &pem, &path.display().to_string())
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// What checks this signer's signatures: its public key.
    pub fn verifier(&self) -> Verifier {
        use aws_lc_rs::signature::KeyPair;
        Verifier {
            public_key: self.key.public_key().as_ref().to_vec(),
        }
    }

    /// The three headers of a `method` request to `path` (its query is left out) at
    /// `now_ms` (Unix milliseconds).
    pub fn headers(&self, method: &str, path: &str, now_ms: i64) -> [(&'static str, String); 3] {
        let message = signed_message(now_ms, method, path);
        let mut signature = vec![0; self.key.public_modulus_len()];
        // Signing with a valid key pair into a buffer of the modulus' length only fails
        // when the system's random source does, which leaves nothing sensible to send.
        let signed = self.key.sign(
            &signature::RSA_PSS_SHA256,
            &self.rng,
            message.as_bytes(),
            &mut signature,
        );
        let signature = match signed {
            Ok(()) => BASE64.encode(&signature),
            Err(_) => String::new(),
        };
        [
            (KEY_HEADER, self.key_id.clone()),
            (TIMESTAMP_HEADER, now_ms.to_string()),
            (SIGNATURE_HEADER, signature),
        ]
    }
}

/// What is signed: the timestamp, the method and the path, without the query.
pub fn signed_message(timestamp_ms: i64, method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    format!("{timestamp_ms}{}{path}", method.to_ascii_uppercase())
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no {0} header")]
    Missing(&'static str),
    #[error("the timestamp {0:?} is not Unix milliseconds")]
    BadTimestamp(String),
    #[error("the timestamp is {0} ms from the server's clock")]
    Skewed(i64),
    #[error("the signature is not base64")]
    NotBase64,
    #[error("the signature does not verify for key {0:?}")]
    BadSignature(String),
}

/// Checks signatures with one public key, as Kalshi does.
#[derive(Debug, Clone)]
pub struct Verifier {
    public_key: Vec<u8>,
}

impl Verifier {
    /// A verifier from a PEM public key (`PUBLIC KEY`, as `openssl pkey -pubout`
    /// writes it); `what` names the key in errors.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Verifier, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|_| KeyError::NotPublicPem(what.to_owned()))?;
        aws_lc_rs::rsa::PublicEncryptingKey::from_der(der.as_ref()).map_err(|e| {
            KeyError::NotRsa {
                what: what.to_owned(),
                why: e.to_string(),
            }
        })?;
        Ok(Verifier {
            public_key: der.as_ref().to_vec(),
        })
    }

    /// Whether a request to `method path` carried a valid signature, given its
    /// headers (by name, case-insensitively) and the verifier's clock `now_ms`.
    pub fn check(
        &self,
        header: impl Fn(&str) -> Option<String>,
        method: &str,
        path: &str,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let key_id = header(KEY_HEADER).ok_or(Refusal::Missing(KEY_HEADER))?;
        let stamp = header(TIMESTAMP_HEADER).ok_or(Refusal::Missing(TIMESTAMP_HEADER))?;
        let signature = header(SIGNATURE_HEADER).ok_or(Refusal::Missing(SIGNATURE_HEADER))?;
        let at: i64 = stamp
            .trim()
            .parse()
            .map_err(|_| Refusal::BadTimestamp(stamp.clone()))?;
        if (now_ms - at).abs() > MAX_SKEW_MS {
            return Err(Refusal::Skewed(now_ms - at));
        }
        let signature = BASE64
            .decode(signature.trim())
            .map_err(|_| Refusal::NotBase64)?;
        let message = signed_message(at, method, path);
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &self.public_key)
            .verify(message.as_bytes(), &signature)
            .map_err(|_| Refusal::BadSignature(key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2048-bit key pair (the mock Kalshi's own), PKCS#8 private and SPKI public.
    const PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mock-feeds/kalshi/mock-signing-key.pem"
    ));
    const PUBLIC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mock-feeds/kalshi/mock-signing-key.pub.pem"
    ));

    fn header_of(headers: &[(&'static str, String); 3]) -> impl Fn(&str) -> Option<String> {
        let headers = headers.clone();
        move |name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_message_is_timestamp_method_and_path_without_the_query() {
        assert_eq!(
            signed_message(1_700_000_000_123, "get", "/trade-api/ws/v2?x=1"),
            "1700000000123GET/trade-api/ws/v2"
        );
    }

    #[test]
    fn a_signature_verifies_with_its_public_key_and_nothing_else_does() {
        let signer = Signer::from_pem("key-1", PRIVATE.as_bytes(), "test key").unwrap();
        let verifier = Verifier::from_pem(PUBLIC.as_bytes(), "test key").unwrap();
        let now = 1_800_000_000_000;
        let headers = signer.headers("GET", "/trade-api/ws/v2", now);
        assert_eq!(headers[0], (KEY_HEADER, "key-1".to_owned()));
        let ok = verifier.check(header_of(&headers), "GET", "/trade-api/ws/v2", now + 5);
        assert_eq!(ok, Ok(()));
        // Another path, another method, a stale clock or no header: refused.
        let other_path = verifier.check(header_of(&headers), "GET", "/trade-api/v2/markets", now);
        assert_eq!(other_path, Err(Refusal::BadSignature("key-1".into())));
        let other_method = verifier.check(header_of(&headers), "POST", "/trade-api/ws/v2", now);
        assert!(other_method.is_err());
        let skewed = verifier.check(header_of(&headers), "GET", "/trade-api/ws/v2", now + 60_000);
        assert_eq!(skewed, Err(Refusal::Skewed(60_000)));
        let none = verifier.check(|_| None, "GET", "/trade-api/ws/v2", now);
        assert_eq!(none, Err(Refusal::Missing(KEY_HEADER)));
    }

    #[test]
    fn keys_that_cannot_sign_are_named() {
        let e = Signer::from_pem("k", b"not a key", "kalshi.pem").unwrap_err();
        assert!(
            e.to_string().contains("kalshi.pem: not a PEM private key"),
            "{e}"
        );
        let e = Verifier::from_pem(PRIVATE.as_bytes(), "pub.pem").unwrap_err();
        assert!(
            e.to_string().contains("pub.pem: not a PEM public key"),
            "{e}"
        );
        let e = Signer::load("k", Path::new("/no/such/key.pem")).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read the key file /no/such/key.pem"),
            "{e}"
        );
    }
}
