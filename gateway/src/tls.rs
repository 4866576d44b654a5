//! Certificates for the gateway's TLS: a private CA and a server certificate signed by it.
//!
//! Used by `kubeknobs-gateway gen-certs` (files for a real deployment or the examples), by the
//! demo (in memory) and by the tests. rcgen does the X.509 work; the CA is valid for ten years,
//! the server certificate for one, and names that parse as IP addresses become IP SANs.

use std::path::Path;

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

    /// Writes `ca.pem`, `server.pem` and `server.key` (mode 0600 on Unix) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })
        };
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.display().to_string(),
            source,
        })?;
        write("ca.pem", &self.ca_pem)?;
        write("server.pem", &self.cert_pem)?;
        write("server.key", &self.key_pem)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join("server.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| Error::Write {
                    path: key.display().to_string(),
                    source,
                },
            )?;
        }
        Ok(())
    }
}
