//! `[gateway]` → [`GatewayConfig`]: the URL's scheme and host, the CA and the token, read from
//! their files now so that a missing file fails at start with the field that names it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawGateway;
use super::validate::Source;
use super::{GatewayConfig, Result};

/// Default `gateway.resend_within_ms`: a move made while disconnected is sent on reconnect if it
/// is at most this old (a gateway restart or network blip), and dropped as stale after.
pub const DEFAULT_RESEND_WITHIN: Duration = Duration::from_secs(10);
/// The largest `gateway.resend_within_ms`: a minute-old move is no operator's current intent.
const MAX_RESEND_WITHIN_MS: u64 = 60_000;

pub(super) fn gateway(src: &Source<'_>, g: &Spanned<RawGateway>) -> Result<GatewayConfig> {
    let table = g.span().start;
    let g = g.get_ref();
    let url = g.url.get_ref().trim();
    let uri: tonic::transport::Uri = url
        .parse()
        .map_err(|e| src.at(&g.url, "gateway.url", format!("not a URL: {e}")))?;
    let Some(host) = uri.host() else {
        return Err(src.at(
            &g.url,
            "gateway.url",
            "needs a host, e.g. https://gateway.example:50051",
        ));
    };
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if is_loopback(host) => false,
        Some("http") => {
            return Err(src.at(
                &g.url,
                "gateway.url",
                format!(
                    "plaintext http:// is only allowed to a loopback host (127.0.0.0/8, ::1, \
                     localhost), not {host}; use https:// with `ca`"
                ),
            ));
        }
        _ => {
            return Err(src.at(
                &g.url,
                "gateway.url",
                "must start with https:// (or http:// to a loopback host)",
            ));
        }
    };
    let ca_pem = match (&g.ca, tls) {
        (Some(ca), true) => Some(read_ca(src, ca)?),
        (None, true) => {
            return Err(src.err(
                Some(table),
                "gateway.ca",
                "required with an https:// url: the PEM CA to trust",
            ));
        }
        // Plaintext loopback: there is nothing to verify, so a configured CA is not even read.
        (_, false) => None,
    };
    let token = read_token(src, &g.token_file)?;
    let domain = match &g.domain {
        Some(d) if d.get_ref().trim().is_empty() => {
            return Err(src.at(
                d,
                "gateway.domain",
                "must not be empty (omit it to use the url's host)",
            ));
        }
        Some(d) => Some(d.get_ref().trim().to_owned()),
        None => None,
    };
    let resend_within = match &g.resend_within_ms {
        Some(ms) if *ms.get_ref() > MAX_RESEND_WITHIN_MS => {
            return Err(src.at(
                ms,
                "gateway.resend_within_ms",
                format!("must be 0..{MAX_RESEND_WITHIN_MS} (0: moves made while disconnected are dropped)"),
            ));
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
        None => DEFAULT_RESEND_WITHIN,
    };
    Ok(GatewayConfig {
        url: url.to_owned(),
        ca_pem,
        token,
        domain,
        resend_within,
    })
}

/// `localhost`, `127.0.0.0/8` and `::1` (with or without brackets).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_file(src: &Source<'_>, value: &Spanned<String>, field: &str) -> Result<(PathBuf, Vec<u8>)> {
    let path = src.resolve(value.get_ref());
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) => Err(src.at(value, field, format!("cannot read {}: {e}", path.display()))),
    }
}

fn read_ca(src: &Source<'_>, ca: &Spanned<String>) -> Result<Vec<u8>> {
    let (path, pem) = read_file(src, ca, "gateway.ca")?;
    if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        Ok(pem)
    } else {
        Err(src.at(
            ca,
            "gateway.ca",
            format!("{} holds no PEM certificate", path.display()),
        ))
    }
}

/// The fewest characters a token may have (the gateway's `auth::MIN_TOKEN_LEN`).
const MIN_TOKEN_LEN: usize = 8;

fn read_token(src: &Source<'_>, file: &Spanned<String>) -> Result<String> {
    let field = "gateway.token_file";
    let (path, bytes) = read_file(src, file, field)?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(src.at(file, field, format!("{} is not UTF-8 text", path.display())));
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(src.at(file, field, format!("{} is empty", path.display())));
    }
    if token.chars().count() < MIN_TOKEN_LEN {
        let message = format!(
            "the token in {} has {} characters; the gateway refuses tokens under {MIN_TOKEN_LEN}",
            path.display(),
            token.chars().count()
        );
        return Err(src.at(file, field, message));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(src.at(
            file,
            field,
            format!(
                "the token in {} may only hold printable ASCII without spaces",
                path.display()
            ),
        ));
    }
    Ok(token.to_owned())
}
