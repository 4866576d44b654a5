//! The bridge's config parser on any text: an error or a config, never a panic; and parsing the
//! same text twice agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let origin = std::path::Path::new("/nonexistent/fuzz/bridge.toml");
    let first = kubeknobs_bridge::config::Local::parse(text, origin);
    let second = kubeknobs_bridge::config::Local::parse(text, origin);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Err(a), Err(b)) = (first, second) {
        assert_eq!(a.to_string(), b.to_string());
    }
});
