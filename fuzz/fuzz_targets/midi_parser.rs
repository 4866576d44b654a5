//! The MIDI byte parser on any byte stream: never panics, and parsing byte by byte gives the
//! same messages and the same count of skipped bytes as parsing all at once.
#![no_main]

use kubeknobs_bridge::midi::parser::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bulk = Parser::new();
    let all = bulk.feed_all(data);
    let mut single = Parser::new();
    let one_by_one: Vec<_> = data.iter().filter_map(|&b| single.feed(b)).collect();
    assert_eq!(all, one_by_one);
    assert_eq!(bulk.skipped(), single.skipped());
});
