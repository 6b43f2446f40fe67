//! TLS on both sides, and the RSA key for caching_sha2_password full authentication.
//!
//! Clients can always ask for TLS: without configured files the proxy makes a self-signed
//! certificate at start, as MariaDB and MySQL do. Towards backends (`use_ssl` on a server row) the
//! server's certificate and name are verified against `mysql-ssl_p2s_ca`/`mysql-ssl_p2s_capath`
//! (and `mysql-ssl_p2s_crl`), ProxySQL's variables; only `mysql-ssl_p2s_verify` (switchyard's)
//! relaxes that, to `ca` (chain only) or `off`. Both sides speak TLS 1.2 or 1.3 only.

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

/// How a backend's certificate is checked (`mysql-ssl_p2s_verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The chain to a configured CA, and the server's name (or IP) in the certificate.
    Identity,
    /// The chain only: for certificates that do not name the address the proxy uses.
    Ca,
    /// Nothing: encryption without authentication, on the operator's explicit word.
    Off,
}

/// The `mysql-ssl_p2s_*` variables, as applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendTlsSettings {
    pub ca: String,
    pub capath: String,
    pub cert: String,
    pub key: String,
    pub cipher: String,
    pub crl: String,
    pub verify: String,
}

impl BackendTlsSettings {
    /// From `(variable_name, value)` rows; other names are skipped.
    pub fn from_variables<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut s = BackendTlsSettings::default();
        for (name, value) in rows {
            let v = value.trim().to_string();
            match name {
                "mysql-ssl_p2s_ca" => s.ca = v,
                "mysql-ssl_p2s_capath" => s.capath = v,
                "mysql-ssl_p2s_cert" => s.cert = v,
                "mysql-ssl_p2s_key" => s.key = v,
                "mysql-ssl_p2s_cipher" => s.cipher = v,
                "mysql-ssl_p2s_crl" => s.crl = v,
                "mysql-ssl_p2s_verify" => s.verify = v,
                _ => {}
            }
        }
        s
    }
}

/// The connector for backends, or why a `use_ssl` server cannot be reached yet (no CA to
/// verify against): that error is every such connect's error, not the start's or the LOAD's.
pub type BackendTls = Result<Arc<ClientConfig>, String>;

/// Builds the backend connector; a file that cannot be read, a cipher rustls does not have or
/// a bad `mysql-ssl_p2s_verify` is an error that names the variable.
pub fn backend_tls(s: &BackendTlsSettings) -> Result<BackendTls, String> {
    let verify = match s.verify.to_ascii_lowercase().as_str() {
        "" | "identity" | "verify_identity" => Verify::Identity,
        "ca" | "verify_ca" => Verify::Ca,
        "off" | "none" | "0" | "false" => Verify::Off,
        other => {
            return Err(format!(
                "mysql-ssl_p2s_verify: '{other}' is not identity, ca or off"
            ))
        }
    };
    let provider = Arc::new(cipher_provider(&s.cipher)?);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("mysql-ssl_p2s_cipher: {e}"))?;
    let builder = if verify == Verify::Off {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if !s.ca.is_empty() {
            for cert in read_certs(&s.ca, "mysql-ssl_p2s_ca")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("mysql-ssl_p2s_ca: {}: {e}", s.ca))?;
            }
        }
        if !s.capath.is_empty() {
            let dir = std::fs::read_dir(&s.capath)
                .map_err(|e| format!("mysql-ssl_p2s_capath: {}: {e}", s.capath))?;
            for entry in dir.flatten() {
                let path = entry.path();
                if path.is_file() {
                    // A CA folder holds other files too (hash links, CRLs): only certificates count.
                    if let Ok(certs) = read_certs(&path.to_string_lossy(), "mysql-ssl_p2s_capath") {
                        for cert in certs {
                            let _ = roots.add(cert);
                        }
                    }
                }
            }
        }
        if roots.is_empty() {
            return Ok(Err(
                "use_ssl: no CA to verify the server's certificate with: set mysql-ssl_p2s_ca \
                 (or mysql-ssl_p2s_capath), or mysql-ssl_p2s_verify='off' to skip the check"
                    .into(),
            ));
        }
        let mut webpki =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider);
        if !s.crl.is_empty() {
            let file = std::fs::File::open(&s.crl)
                .map_err(|e| format!("mysql-ssl_p2s_crl: {}: {e}", s.crl))?;
            let crls = rustls_pemfile::crls(&mut BufReader::new(file))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("mysql-ssl_p2s_crl: {}: {e}", s.crl))?;
            if crls.is_empty() {
                return Err(format!("mysql-ssl_p2s_crl: {} holds no CRL", s.crl));
            }
            webpki = webpki.with_crls(crls);
        }
        let webpki = webpki
            .build()
            .map_err(|e| format!("mysql-ssl_p2s_ca: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Verify::Ca => Arc::new(ChainOnly(webpki)),
            _ => webpki,
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
    };
    let config = match (s.cert.is_empty(), s.key.is_empty()) {
        (true, true) => builder.with_no_client_auth(),
        (false, false) => {
            let (certs, key) = load_pem(&TlsFiles {
                cert: s.cert.clone().into(),
                key: s.key.clone().into(),
            })
            .map_err(|e| format!("mysql-ssl_p2s_cert/mysql-ssl_p2s_key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("mysql-ssl_p2s_cert/mysql-ssl_p2s_key: {e}"))?
        }
        _ => {
            return Err(
                "mysql-ssl_p2s_cert and mysql-ssl_p2s_key go together: set both or neither".into(),
            )
        }
    };
    Ok(Ok(Arc::new(config)))
}

fn read_certs(path: &str, variable: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{variable}: {path}: {e}"))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{variable}: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{variable}: {path} holds no certificate"));
    }
    Ok(certs)
}

/// OpenSSL's names (what `mysql-ssl_p2s_cipher` holds on ProxySQL) for the suites rustls has.
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The provider with only the suites `list` names (`:` or `,` separated, OpenSSL or IANA
/// names; TLS 1.3 suites are always kept, as OpenSSL's cipher list does); every suite when empty.
fn cipher_provider(list: &str) -> Result<rustls::crypto::CryptoProvider, String> {
    let mut p = rustls::crypto::ring::default_provider();
    let names: Vec<&str> = list
        .split([':', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(p);
    }
    let mut wanted = Vec::new();
    for name in &names {
        let iana = OPENSSL_NAMES
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(name))
            .map_or(*name, |(_, i)| *i);
        let suite = p
            .cipher_suites
            .iter()
            .find(|s| {
                s.suite()
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(iana))
            })
            .ok_or_else(|| {
                format!(
                    "mysql-ssl_p2s_cipher: '{name}' is not a suite of TLS 1.2 or 1.3 this proxy has"
                )
            })?;
        wanted.push(*suite);
    }
    p.cipher_suites.retain(|s| {
        s.version() == &rustls::version::TLS13 || wanted.iter().any(|w| w.suite() == s.suite())
    });
    Ok(p)
}

/// Verifies the chain and the signatures; a certificate for another name is accepted
/// (`mysql-ssl_p2s_verify = 'ca'`).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
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
    }

    #[test]
    fn backend_settings_are_checked_and_name_the_variable() {
        let off = BackendTlsSettings {
            verify: "off".into(),
            ..Default::default()
        };
        assert!(matches!(backend_tls(&off), Ok(Ok(_))));
        // No CA: not an error of the settings, but of every use_ssl connect.
        let no_ca = backend_tls(&BackendTlsSettings::default()).unwrap();
        assert!(no_ca.unwrap_err().contains("mysql-ssl_p2s_ca"));
        let bad = |s: BackendTlsSettings, needle: &str| {
            let e = backend_tls(&s).unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        bad(
            BackendTlsSettings {
                verify: "maybe".into(),
                ..Default::default()
            },
            "mysql-ssl_p2s_verify",
        );
        bad(
            BackendTlsSettings {
                ca: "/nonexistent/ca.pem".into(),
                ..Default::default()
            },
            "mysql-ssl_p2s_ca: /nonexistent/ca.pem",
        );
        bad(
            BackendTlsSettings {
                verify: "off".into(),
                cipher: "RC4-MD5".into(),
                ..Default::default()
            },
            "mysql-ssl_p2s_cipher: 'RC4-MD5'",
        );
        let one = cipher_provider("ECDHE-ECDSA-AES256-GCM-SHA384").unwrap();
        let tls12: Vec<_> = one
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        assert_eq!(tls12.len(), 1);
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
