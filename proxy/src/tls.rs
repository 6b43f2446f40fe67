//! TLS on both sides, and the RSA key for caching_sha2_password full authentication.
//!
//! Clients can always ask for TLS: without configured files the proxy makes a self-signed
//! certificate at start, as MariaDB and MySQL do. Towards backends the proxy does not verify the
//! server certificate (the same default as ProxySQL and `--ssl` without `--ssl-verify-server-cert`):
//! backends are addressed by IP in a trusted network far more often than by a name on a CA cert.

use std::io::BufReader;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no {what}")]
    Missing { path: String, what: &'static str },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor's configuration: from files, or self-signed.
pub fn server_config(files: Option<&TlsFiles>) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = match files {
        Some(f) => load_pem(f)?,
        None => self_signed()?,
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn load_pem(
    files: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let open = |p: &std::path::Path| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|source| TlsError::Read {
                path: p.display().to_string(),
                source,
            })
    };
    let certs = rustls_pemfile::certs(&mut open(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: files.cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: files.cert.display().to_string(),
            what: "certificate",
        });
    }
    let key = rustls_pemfile::private_key(&mut open(&files.key)?)
        .map_err(|source| TlsError::Read {
            path: files.key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::Missing {
            path: files.key.display().to_string(),
            what: "private key",
        })?;
    Ok((certs, key))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec!["localhost".to_string(), "switchyard".to_string()];
    let cert = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    let key = PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(|e| TlsError::SelfSigned(e.into()))?;
    Ok((vec![cert.cert.der().clone()], key))
}

/// The connector's configuration for backends (no certificate verification, see module docs).
pub fn backend_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider())))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The RSA key pair a caching_sha2_password client encrypts its password with when it has no TLS.
pub struct RsaKeys {
    pub private: rsa::RsaPrivateKey,
    pub public_pem: String,
}

/// Made on first use: key generation takes a moment and most deployments never need it.
pub fn rsa_keys() -> Option<&'static RsaKeys> {
    static KEYS: OnceLock<Option<RsaKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).ok()?;
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .ok()?;
        Some(RsaKeys {
            private,
            public_pem,
        })
    })
    .as_ref()
}

/// Decrypts a caching_sha2 RSA reply: OAEP(SHA-1) of (password ‖ NUL) XOR the nonce, repeated.
pub fn decrypt_password(keys: &RsaKeys, ciphertext: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
    let plain = keys
        .private
        .decrypt(rsa::Oaep::new::<sha1::Sha1>(), ciphertext)
        .ok()?;
    if nonce.is_empty() {
        return None;
    }
    let mut pw: Vec<u8> = plain
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ nonce[i % nonce.len()])
        .collect();
    if pw.last() == Some(&0) {
        pw.pop();
    }
    Some(pw)
}

/// Encrypts a password for a caching_sha2 server's public key (the proxy as a backend client).
pub fn encrypt_password(public_pem: &[u8], password: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
    use rsa::pkcs8::DecodePublicKey;
    let pem = std::str::from_utf8(public_pem).ok()?;
    let key = rsa::RsaPublicKey::from_public_key_pem(pem.trim_end_matches('\0'))
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            rsa::RsaPublicKey::from_pkcs1_pem(pem.trim_end_matches('\0'))
        })
        .ok()?;
    if nonce.is_empty() {
        return None;
    }
    let mut plain = password.to_vec();
    plain.push(0);
    for (i, b) in plain.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
    key.encrypt(
        &mut rand::thread_rng(),
        rsa::Oaep::new::<sha1::Sha1>(),
        &plain,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_server_config_builds() {
        assert!(server_config(None).is_ok());
        assert!(backend_client_config().is_ok());
    }

    #[test]
    fn rsa_password_exchange_round_trips() {
        let keys = rsa_keys().unwrap();
        let nonce = b"abcdefghij0123456789";
        let ct = encrypt_password(keys.public_pem.as_bytes(), b"s3cret", nonce).unwrap();
        assert_eq!(decrypt_password(keys, &ct, nonce).unwrap(), b"s3cret");
        assert_eq!(decrypt_password(keys, &ct[1..], nonce), None);
    }
}
