//! The gateway's config parser on any text: an error or a config, never a panic; and parsing the
//! same text twice agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let origin = std::path::Path::new("/nonexistent/fuzz/gateway.toml");
    // `--insecure`: TLS files cannot exist here, so only plaintext configs can be fully valid.
    let flags = kubeknobs_gateway::config::Flags {
        listen: None,
        insecure: true,
    };
    let first = kubeknobs_gateway::config::Config::parse(text, origin, &flags);
    let second = kubeknobs_gateway::config::Config::parse(text, origin, &flags);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Err(a), Err(b)) = (first, second) {
        assert_eq!(a.to_string(), b.to_string());
    }
});
