//! Examples for each rule of the parser, then properties over random streams (proptest).

use proptest::prelude::*;

use super::*;

fn cc(channel: u8, controller: u8, value: u8) -> Message {
    Message::ControlChange {
        channel,
        controller,
        value,
    }
}

#[test]
fn running_status_reuses_the_last_status() {
    let mut p = Parser::new();
    let out = p.feed_all(&[0xB0, 7, 100, 7, 101, 8, 0]);
    assert_eq!(out, vec![cc(0, 7, 100), cc(0, 7, 101), cc(0, 8, 0)]);
}

#[test]
fn realtime_inside_a_message_is_yielded_and_changes_nothing() {
    let mut p = Parser::new();
    let out = p.feed_all(&[0xB2, 0xF8, 7, 0xFE, 64, 0xFA]);
    assert_eq!(
        out,
        vec![
            Message::Realtime(0xF8),
            Message::Realtime(0xFE),
            cc(2, 7, 64),
            Message::Realtime(0xFA)
        ]
    );
}

#[test]
fn sysex_of_any_length_then_running_status_is_gone() {
    let mut p = Parser::new();
    let mut bytes = vec![0xB0, 1, 2, 0xF0];
    bytes.extend(std::iter::repeat_n(0x11, 10_000));
    bytes.extend([0xF8, 0xF7, 5, 6]);
    let out = p.feed_all(&bytes);
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        &out[..out.len().min(4)]
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(out[0], cc(0, 1, 2));
    assert_eq!(out[1], Message::Realtime(0xF8));
    assert!(matches!(&out[2], Message::SysEx(b) if b.len() == 10_000));
    // After a SysEx there is no running status: 5, 6 are garbage.
    assert_eq!(p.skipped(), 2);
}

#[test]
fn overlong_sysex_is_skipped_whole() {
    let mut p = Parser::new();
    let mut bytes = vec![0xF0];
    bytes.extend(std::iter::repeat_n(0, MAX_SYSEX + 10));
    bytes.extend([0xF7, 0x90, 60, 127]);
    let out = p.feed_all(&bytes);
    assert_eq!(
        out,
        vec![Message::NoteOn {
            channel: 0,
            note: 60,
            velocity: 127
        }]
    );
}

#[test]
fn garbage_and_truncated_messages_are_skipped() {
    let mut p = Parser::new();
    // Data with no status; a CC cut short by a new status; stray F7; undefined F4 and FD.
    let out = p.feed_all(&[1, 2, 0xB0, 7, 0xC1, 5, 0xF7, 0xF4, 9, 0xFD, 0xE0, 0, 64]);
    assert_eq!(
        out,
        vec![
            Message::ProgramChange {
                channel: 1,
                program: 5
            },
            Message::PitchBend {
                channel: 0,
                value: 8192
            }
        ]
    );
    assert_eq!(p.skipped(), 7);
}

#[test]
fn system_common_messages_cancel_running_status() {
    let mut p = Parser::new();
    let out = p.feed_all(&[0xB0, 1, 1, 0xF2, 0x10, 0x20, 0xF6, 1, 1]);
    assert_eq!(
        out,
        vec![
            cc(0, 1, 1),
            Message::Common(0xF2, vec![0x10, 0x20]),
            Message::Common(0xF6, vec![])
        ]
    );
}

fn channel_message() -> impl Strategy<Value = Message> {
    let ch = 0u8..16;
    let d = || 0u8..128;
    prop_oneof![
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOff {
            channel,
            note,
            velocity
        }),
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOn {
            channel,
            note,
            velocity
        }),
        (ch.clone(), d(), d()).prop_map(|(c, k, v)| cc(c, k, v)),
        (ch.clone(), d())
            .prop_map(|(channel, program)| Message::ProgramChange { channel, program }),
        (ch.clone(), d())
            .prop_map(|(channel, pressure)| Message::ChannelPressure { channel, pressure }),
        (ch, 0u16..16384).prop_map(|(channel, value)| Message::PitchBend { channel, value }),
        proptest::collection::vec(0u8..128, 0..300).prop_map(Message::SysEx),
    ]
}

proptest! {
    #[test]
    fn never_panics_and_yields_only_valid_messages(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut p = Parser::new();
        for m in p.feed_all(&bytes) {
            // Whatever it yields encodes back to bytes it parses to the same message.
            let again = Parser::new().feed_all(&m.to_bytes());
            prop_assert_eq!(again, vec![m]);
        }
    }

    #[test]
    fn recovers_every_message_with_running_status_and_interleaved_realtime(
        messages in proptest::collection::vec(channel_message(), 0..60),
        realtime in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![0xF8u8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF])), 0..20),
    ) {
        // Encode with running status (omit a status equal to the previous one).
        let mut bytes = Vec::new();
        let mut running = None;
        for m in &messages {
            let b = m.to_bytes();
            if b[0] < 0xF0 && running == Some(b[0]) {
                bytes.extend(&b[1..]);
            } else {
                bytes.extend(&b);
            }
            running = if b[0] < 0xF0 { Some(b[0]) } else { None };
        }
        // Sprinkle realtime bytes anywhere, remembering where.
        let mut stream: Vec<(u8, bool)> = bytes.iter().map(|&b| (b, false)).collect();
        for (at, rt) in realtime {
            let i = at.index(stream.len() + 1);
            stream.insert(i, (rt, true));
        }
        let mut p = Parser::new();
        let mut got = Vec::new();
        let mut got_rt = Vec::new();
        for (b, _) in &stream {
            match p.feed(*b) {
                Some(Message::Realtime(r)) => got_rt.push(r),
                Some(m) => got.push(m),
                None => {}
            }
        }
        let want_rt: Vec<u8> = stream.iter().filter(|(_, rt)| *rt).map(|(b, _)| *b).collect();
        prop_assert_eq!(got, messages);
        prop_assert_eq!(got_rt, want_rt);
        prop_assert_eq!(p.skipped(), 0);
    }
}
