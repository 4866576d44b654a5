//! Mutual TLS: the operator named by a client certificate the TLS layer already verified
//! against `auth.client_ca`.
//!
//! As in Kubernetes, the subject's common name (CN) is the operator and its organizations (O)
//! are the operator's groups. Only the verified leaf certificate is read here; the chain was
//! checked by rustls during the handshake.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Error, Identity};

/// The identity in a DER certificate: CN as name, O as groups.
pub fn identity_from_der(der: &[u8]) -> Result<Identity, Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|err| Error::UnreadableCertificate(err.to_string()))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::trim)
        .filter(|cn| !cn.is_empty())
        .ok_or(Error::NoCommonName)?;
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Ok(Identity::new(name, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_is_the_operator_and_o_the_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "erin");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "ops");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = identity_from_der(cert.der()).expect("identity");
        assert_eq!(&*id.name, "erin");
        assert_eq!(&*id.groups, ["ops".to_owned()]);
        assert!(
            identity_from_der(b"nope")
                .unwrap_err()
                .to_string()
                .contains("cannot be parsed")
        );
    }
}
