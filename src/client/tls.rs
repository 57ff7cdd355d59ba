//! TLS trust for every outbound connection of a command: the platform's roots plus a
//! private CA (`--cacert`), or no verification at all (`--insecure`, which the
//! commands say on the terminal and record in their reports). One rustls config is
//! built once and used by the WebSocket connects, the REST requests and goose alike.
//!
//! [`failure`] names why a handshake failed in the words people search for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("--cacert {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("--cacert {0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The TLS config for `--cacert FILE` (its certificates trusted besides the
/// platform's roots) or `--insecure` (nothing verified).
pub fn client_config(
    cacert: Option<&Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        // Unreadable platform certificates are skipped: the CA the user gave still counts.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = cacert {
            for cert in ca_certificates(path)? {
                roots.add(cert).map_err(|e| TlsSetupError::CaFile {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bad = |reason: String| TlsSetupError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// Why a TLS handshake failed, when `error` (or one of its causes) says: a short kind
/// for counting (`unknown_issuer`, `name_mismatch`, `expired`, ...) and a sentence.
pub fn failure(error: &(dyn std::error::Error + 'static)) -> Option<(&'static str, String)> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(describe(tls));
    }
    // An io::Error hides what it wraps from `source()` (it returns the wrapped error's
    // source), and TLS stacks wrap rustls errors in io::Errors, sometimes twice.
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(found) = failure(inner)
    {
        return Some(found);
    }
    failure(error.source()?)
}

fn describe(error: &rustls::Error) -> (&'static str, String) {
    const HINT: &str = "trust its CA with --cacert FILE, or skip verification with --insecure";
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => (
                "unknown_issuer",
                format!("the server's certificate has an unknown issuer ({HINT})"),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    "name_mismatch",
                    "the server's certificate is not valid for this host name".into(),
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("expired", "the server's certificate has expired".into())
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "not_yet_valid",
                "the server's certificate is not valid yet".into(),
            ),
            CertificateError::Revoked => (
                "revoked",
                "the server's certificate has been revoked".into(),
            ),
            other => (
                "bad_certificate",
                format!("the server's certificate: {other:?}"),
            ),
        },
        rustls::Error::AlertReceived(alert) => (
            "alert",
            format!("the server ended the handshake with the alert {alert:?}"),
        ),
        other => ("handshake", other.to_string()),
    }
}

/// `--insecure`: every certificate is accepted; signatures are still checked, so the
/// handshake itself is real.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_pem_certificate() {
        let dir = std::env::temp_dir().join(format!("lg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = client_config(Some(&empty), false).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = client_config(Some(&dir.join("missing.pem")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(client_config(None, true).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn handshake_failures_are_named() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        // As hyper-rustls hands it over: an io::Error inside an io::Error.
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        let wrapped = std::io::Error::other(inner);
        let (kind, why) = failure(&wrapped).unwrap();
        assert_eq!(kind, "unknown_issuer");
        assert!(why.contains("--cacert"), "{why}");
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(failure(&expired).unwrap().0, "expired");
        let other = std::io::Error::other("plain");
        assert!(failure(&other).is_none());
    }

    #[test]
    fn each_certificate_failure_has_its_kind_and_a_sentence() {
        use rustls::AlertDescription;
        let kind = |e: rustls::Error| describe(&e);
        let cert = |c: CertificateError| kind(rustls::Error::InvalidCertificate(c));
        let (k, said) = cert(CertificateError::UnknownIssuer);
        assert_eq!(k, "unknown_issuer");
        assert!(
            said.contains("--cacert") && said.contains("--insecure"),
            "{said}"
        );
        assert_eq!(cert(CertificateError::NotValidForName).0, "name_mismatch");
        assert_eq!(cert(CertificateError::Expired).0, "expired");
        assert_eq!(cert(CertificateError::NotValidYet).0, "not_yet_valid");
        assert_eq!(cert(CertificateError::Revoked).0, "revoked");
        assert_eq!(cert(CertificateError::BadEncoding).0, "bad_certificate");
        let (k, said) = kind(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure,
        ));
        assert_eq!(k, "alert");
        assert!(said.contains("HandshakeFailure"), "{said}");
        assert_eq!(kind(rustls::Error::General("x".into())).0, "handshake");
    }
}
