//! TLS as libpq's `sslmode` asks for it, with rustls:
//!
//! | sslmode | encrypted | certificate checked |
//! |---|---|---|
//! | disable | no | - |
//! | allow, prefer | when the server offers it | no |
//! | require | yes | no; chain only when a root certificate file is given (libpq, lib/pq) |
//! | verify-ca | yes | chain, against the root certificates |
//! | verify-full | yes | chain and host name |
//!
//! Root certificates: `sslrootcert` (or `PGSSLROOTCERT`; `system` = the system store),
//! else `~/.postgresql/root.crt` when it exists, else the system store (lib/pq's choice).
//! A client certificate: `sslcert` + `sslkey`, else `~/.postgresql/postgresql.{crt,key}`
//! when both exist.

use crate::conninfo::{SslMode, TlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tflock_core::fsread::{read_bounded, ReadErrorKind, CONFIG_MAX};

/// The rustls configuration for `tls`, or `None` for `sslmode=disable`. Reads the
/// certificate files now, so a wrong path fails before anything is sent.
pub fn client_config(
    tls: &TlsSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<ClientConfig>>, String> {
    if tls.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let root_file = tls
        .root_cert
        .clone()
        .or_else(|| home_file("root.crt", env).map(|p| p.display().to_string()));
    let verify = match tls.mode {
        SslMode::VerifyFull => Some(true),
        SslMode::VerifyCa => Some(false),
        // libpq and lib/pq: `require` with a root certificate file checks the chain.
        SslMode::Require if tls.root_cert.is_some() => Some(false),
        _ => None,
    };
    let builder = match verify {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                provider,
                chain: None,
            })),
        Some(full) => {
            let roots = Arc::new(roots(root_file.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
            if full {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Lenient {
                        provider,
                        chain: Some(webpki),
                    }))
            }
        }
    };
    let client_files = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (Some(_), None) | (None, Some(_)) => {
            return Err("sslcert and sslkey must be given together".into())
        }
        (None, None) => match (
            home_file("postgresql.crt", env),
            home_file("postgresql.key", env),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        },
    };
    let config = match client_files {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(&cert)?;
            let bytes = read(&key)?;
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|_| format!("{}: no PEM private key (sslkey)", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate cannot be used: {e}"))?
        }
    };
    Ok(Some(Arc::new(config)))
}

/// `~/.postgresql/<name>` when it exists.
fn home_file(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let path = PathBuf::from(env("HOME")?).join(".postgresql").join(name);
    path.is_file().then_some(path)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    read_bounded(path, CONFIG_MAX).map_err(|e| match e.kind() {
        ReadErrorKind::NotFound => format!("{e} (check sslrootcert / sslcert / sslkey)"),
        _ => e.to_string(),
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) if path != "system" => {
            for cert in certificates(Path::new(path))? {
                store
                    .add(cert)
                    .map_err(|e| format!("{path}: unusable root certificate: {e}"))?;
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "no system root certificates found: give the server's CA as sslrootcert".into(),
                );
            }
        }
    }
    Ok(store)
}

/// Below `verify-full`: encrypted, the handshake signatures checked, the certificate
/// checked less. `chain: None` (`prefer` / `require`): not at all, as libpq. `Some`
/// (`verify-ca`, or `require` with a root file): the chain must lead to a trusted root;
/// the name may differ.
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    // The signatures are checked as WebPkiServerVerifier checks them, with the same
    // provider's algorithms.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
