//! The OSC decoder on any datagram: never panics, and what it decodes encodes and decodes back
//! to the same bytes (a round trip through rosc's encoder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosc::OscPacket;

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = kubeknobs_bridge::osc::decode(data) else {
        return;
    };
    for message in messages {
        let Ok(bytes) = rosc::encoder::encode(&OscPacket::Message(message)) else {
            continue;
        };
        let again = kubeknobs_bridge::osc::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(again.len(), 1);
        let bytes_again =
            rosc::encoder::encode(&OscPacket::Message(again.into_iter().next().unwrap()))
                .expect("encodes again");
        assert_eq!(bytes, bytes_again, "decode(encode(m)) changed the message");
    }
});
