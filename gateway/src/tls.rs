//! The gateway's TLS: the rustls server config it serves with ([`server_config`], also run by
//! `check` so files that do not parse or do not match are found before serving), and
//! certificates for it: a private CA and a server certificate signed by it.
//!
//! Certificates are made by `kubeknobs-gateway gen-certs` (files for a real deployment or the
//! examples), by the demo (in memory) and by the tests. rcgen does the X.509 work; the CA is
//! valid for ten years, the server certificate for one, and names that parse as IP addresses
//! become IP SANs.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen refused the parameters (e.g. an invalid DNS name).
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate file holds no usable PEM certificate.
    #[error("no PEM certificate in it ({0})")]
    Cert(String),
    /// The key file holds no usable PEM private key.
    #[error("no PEM private key in it ({0})")]
    Key(String),
    /// The key is not the certificate's, or rustls cannot use them.
    #[error("the key does not match the certificate, or cannot be used with it ({0})")]
    Mismatch(#[source] rustls::Error),
    /// The client CA holds no usable certificate.
    #[error("no usable CA certificate in it ({0})")]
    ClientCa(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A PEM certificate chain and private key for the gRPC server.
#[derive(Clone, Default)]
pub struct TlsIdentity {
    /// PEM certificate chain, server certificate first.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity { .. }")
    }
}

/// Client certificates the gateway accepts (`[auth] client_ca`, `client_cert_required`).
#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// PEM CA certificate(s) that sign client certificates.
    pub ca_pem: Vec<u8>,
    /// Refuse connections without a client certificate (else bearer tokens still work).
    pub required: bool,
}

/// The ALPN protocol gRPC speaks.
const ALPN_H2: &[u8] = b"h2";

/// The rustls config the gateway serves with: its identity, and a verifier of client
/// certificates signed by `client`'s CA (optional unless `client.required`).
pub fn server_config(
    tls: &TlsIdentity,
    client: Option<&ClientAuth>,
) -> Result<Arc<ServerConfig>, Error> {
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::Cert("the file has no CERTIFICATE section".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| Error::Key(e.to_string()))?;
    let builder = ServerConfig::builder();
    let builder = match client {
        None => builder.with_no_client_auth(),
        Some(client) => builder.with_client_cert_verifier(client_verifier(client)?),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(Error::Mismatch)?;
    config.alpn_protocols.push(ALPN_H2.into());
    Ok(Arc::new(config))
}

/// The verifier of client certificates signed by `client`'s CA (optional unless
/// `client.required`); also run by `check`, so a CA without a usable certificate is found early.
pub fn client_verifier(client: &ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&client.ca_pem) {
        let cert = cert.map_err(|e| Error::ClientCa(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| Error::ClientCa(e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder(roots.into());
    let verifier = if client.required {
        verifier
    } else {
        verifier.allow_unauthenticated()
    };
    verifier.build().map_err(|e| Error::ClientCa(e.to_string()))
}

/// A CA certificate and a server certificate + key signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct CertBundle {
    /// The CA certificate bridges trust (`ca.pem`).
    pub ca_pem: String,
    /// The server certificate (`server.pem`).
    pub cert_pem: String,
    /// The server's private key (`server.key`).
    pub key_pem: String,
}

impl CertBundle {
    /// A fresh CA and a server certificate valid for `names` (DNS names or IP addresses).
    pub fn generate(names: &[String]) -> Result<CertBundle, Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubeknobs CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kubeknobs-gateway");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = std::time::SystemTime::now();
        params.not_before = now.into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 24 * 3600)).into();
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(CertBundle {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`. Each file is written to a new
    /// temporary file in `dir` (created exclusively, so never through a symlink; the key with
    /// mode 0600 on Unix from the start) and renamed over the old name, which replaces a symlink
    /// there rather than writing through it.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.display().to_string(),
            source,
        })?;
        write_new(dir, "ca.pem", &self.ca_pem, 0o644)?;
        write_new(dir, "server.pem", &self.cert_pem, 0o644)?;
        write_new(dir, "server.key", &self.key_pem, 0o600)
    }
}

/// Writes `contents` to `dir/name` as described in [`CertBundle::write`], with `mode` on Unix.
fn write_new(dir: &Path, name: &str, contents: &str, mode: u32) -> Result<(), Error> {
    use std::io::Write as _;
    let path = dir.join(name);
    let failed = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir).map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(&path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn the_key_is_never_readable_by_others_and_symlinks_are_replaced_not_followed() {
        let bundle = CertBundle::generate(&["localhost".into()]).expect("generate");
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "not a key").expect("write");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = dir.path().join("certs");
        std::fs::create_dir(&out).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, out.join("server.key")).expect("symlink");

        // Watch the key's mode while it is written, many times over.
        let key = out.join("server.key");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (key, done) = (key.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(meta) = std::fs::symlink_metadata(&key)
                        && meta.is_file()
                    {
                        seen.insert(meta.mode() & 0o777);
                    }
                }
                seen
            })
        };
        for _ in 0..50 {
            bundle.write(&out).expect("write");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = watcher.join().expect("watcher");
        assert_eq!(
            std::fs::read_to_string(&elsewhere).unwrap(),
            "not a key",
            "written through the symlink"
        );
        let meta = std::fs::symlink_metadata(&key).expect("key");
        assert!(meta.is_file(), "the symlink was replaced by the key");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), bundle.key_pem);
        assert!(
            seen.iter().all(|mode| mode & 0o077 == 0),
            "the key was readable by others for a moment: modes {seen:?}"
        );
    }
}
