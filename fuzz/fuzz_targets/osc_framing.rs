//! OSC-over-TCP framing on any byte stream: never panics; a stream read in pieces gives the
//! same packets (and the same error) as read at once; and every packet framed in the client's
//! framing comes back unchanged.
#![no_main]

use kubeknobs_bridge::osc::framing::{self, Deframer};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

/// All packets of `pieces` pushed one after another, and the error that ended them, if any.
fn drain(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Option<framing::Error>) {
    let mut deframer = Deframer::new(LIMIT);
    let mut packets = Vec::new();
    for piece in pieces {
        deframer.push(piece);
        loop {
            match deframer.next_packet() {
                Ok(Some(packet)) => {
                    assert!(packet.len() <= LIMIT, "a packet over the limit");
                    packets.push(packet);
                }
                Ok(None) => break,
                Err(e) => return (packets, Some(e)),
            }
        }
    }
    (packets, None)
}

fuzz_target!(|data: &[u8]| {
    let whole = drain(&[data]);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(whole, drain(&bytes), "byte by byte differs from all at once");
    let thirds: Vec<&[u8]> = data.chunks(data.len() / 3 + 1).collect();
    assert_eq!(whole, drain(&thirds), "in thirds differs from all at once");

    // Round trip: a non-empty packet framed either way deframes to itself.
    if !data.is_empty() && data.len() <= LIMIT && (data[0] == b'/' || data[0] == b'#') {
        for framing in [framing::Framing::Slip, framing::Framing::LengthPrefixed] {
            let framed = framing::frame(framing, data);
            let (packets, error) = drain(&[&framed]);
            assert_eq!(error, None, "{framing}");
            assert_eq!(packets, vec![data.to_vec()], "{framing}");
        }
    }
});
