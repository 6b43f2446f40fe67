//! `sandbox up --tls`: a CA of the sandbox's own and one server certificate signed by it (for
//! `127.0.0.1` and `localhost`, the names clients use), in `DIR/tls/`. Every mariadbd serves it;
//! the proxy config verifies it with the CA (`mysql-ssl_p2s_ca`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use super::error::{IoContext, Result, SandboxError};
use super::state::write_private;

/// The files of a sandbox's TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn failed(e: rcgen::Error) -> SandboxError {
    SandboxError::Command {
        command: "make the sandbox's TLS certificates".into(),
        detail: e.to_string(),
    }
}

/// Makes a CA and a server certificate signed by it in `dir` (created).
pub fn make(dir: &Path) -> Result<TlsFiles> {
    std::fs::create_dir_all(dir).io_context(|| format!("create {}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "switchyard sandbox CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(failed)?)
        .map_err(failed)?;
    let server_key = KeyPair::generate().map_err(failed)?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(failed)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "switchyard sandbox server");
    let cert = params.signed_by(&server_key, &ca).map_err(failed)?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server-cert.pem"),
        key: dir.join("server-key.pem"),
    };
    std::fs::write(&files.ca, ca.pem()).io_context(|| format!("write {}", files.ca.display()))?;
    std::fs::write(&files.cert, cert.pem())
        .io_context(|| format!("write {}", files.cert.display()))?;
    write_private(&files.key, server_key.serialize_pem().as_bytes())?;
    Ok(files)
}
