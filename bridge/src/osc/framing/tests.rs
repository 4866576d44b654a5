use proptest::prelude::*;

use super::*;

/// Every packet `deframer` yields from `bytes` fed in pieces of `chunk` bytes.
fn packets(deframer: &mut Deframer, bytes: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        deframer.push(piece);
        while let Some(packet) = deframer.next_packet()? {
            out.push(packet);
        }
    }
    Ok(out)
}

fn osc(addr: &str, value: f32) -> Vec<u8> {
    rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: addr.into(),
        args: vec![rosc::OscType::Float(value)],
    }))
    .expect("encode")
}

#[test]
fn the_first_byte_chooses_the_framing() {
    let mut slip = Deframer::new(1024);
    assert_eq!(slip.framing(), None);
    slip.push(&frame(Framing::Slip, &osc("/a", 1.0)));
    assert_eq!(slip.framing(), Some(Framing::Slip));

    let mut prefixed = Deframer::new(1024);
    prefixed.push(&frame(Framing::LengthPrefixed, &osc("/a", 1.0)));
    assert_eq!(prefixed.framing(), Some(Framing::LengthPrefixed));

    // Some senders leave out the leading END: the packet's own first byte is `/`.
    let mut bare = Deframer::new(1024);
    let mut bytes = osc("/a", 1.0);
    bytes.push(END);
    assert_eq!(packets(&mut bare, &bytes, 3), Ok(vec![osc("/a", 1.0)]));
}

#[test]
fn liblo_length_prefixed_bytes_are_read() {
    // What `oscsend osc.tcp://127.0.0.1:PORT /a/b f 0.5` (liblo 0.31) writes.
    let bytes = b"\x00\x00\x00\x10/a/b\x00\x00\x00\x00,f\x00\x00?\x00\x00\x00";
    let mut deframer = Deframer::new(1024);
    assert_eq!(packets(&mut deframer, bytes, 5), Ok(vec![osc("/a/b", 0.5)]));
}

#[test]
fn slip_escapes_end_and_esc_inside_a_packet() {
    let packet = vec![b'/', END, b'x', ESC, 0];
    let framed = frame(Framing::Slip, &packet);
    assert_eq!(
        framed,
        [END, b'/', ESC, ESC_END, b'x', ESC, ESC_ESC, 0, END]
    );
    assert_eq!(
        packets(&mut Deframer::new(64), &framed, 1),
        Ok(vec![packet])
    );
}

#[test]
fn a_bad_escape_is_an_error() {
    let mut deframer = Deframer::new(64);
    let bytes = [END, b'/', ESC, b'x', END];
    assert_eq!(
        packets(&mut deframer, &bytes, 8),
        Err(Error::BadEscape(b'x'))
    );
}

#[test]
fn oversized_frames_are_refused_before_they_are_buffered() {
    let mut prefixed = Deframer::new(100);
    prefixed.push(&[0, 0, 0, 101]);
    assert!(matches!(
        prefixed.next_packet(),
        Err(Error::TooLarge { limit: 100, .. })
    ));

    let mut slip = Deframer::new(100);
    slip.push(&[END]);
    slip.push(&[b'/'; 150]);
    assert_eq!(slip.next_packet(), Ok(None), "may still be escaped");
    slip.push(&[b'/'; 60]);
    let err = slip
        .next_packet()
        .expect_err("over twice the limit, no END");
    assert_eq!(
        err.to_string(),
        "an OSC packet of more than 100 bytes (framing SLIP (OSC 1.1))"
    );
}

proptest! {
    #[test]
    fn packets_survive_either_framing_in_any_chunking(
        list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..20),
        chunk in 1usize..64,
        slip in any::<bool>(),
    ) {
        let framing = if slip { Framing::Slip } else { Framing::LengthPrefixed };
        let bytes: Vec<u8> = list.iter().flat_map(|p| frame(framing, p)).collect();
        let mut deframer = Deframer::new(256);
        let got = packets(&mut deframer, &bytes, chunk);
        prop_assert_eq!(deframer.framing(), Some(framing));
        prop_assert_eq!(got, Ok(list));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..64) {
        let mut deframer = Deframer::new(128);
        if let Ok(list) = packets(&mut deframer, &bytes, chunk) {
            prop_assert!(list.iter().all(|p| p.len() <= 128 && !p.is_empty()));
        }
    }
}
