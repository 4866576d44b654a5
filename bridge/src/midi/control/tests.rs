use super::*;

fn cc(controller: u8, value: u8) -> Message {
    Message::ControlChange {
        channel: 0,
        controller,
        value,
    }
}

fn find(events: &[ControlEvent], control: Control) -> Option<Raw> {
    events.iter().find(|e| e.control == control).map(|e| e.raw)
}

#[test]
fn pairs_14_bit_cc_msb_and_lsb() {
    let mut d = Decoder::default();
    let msb = d.decode(&cc(1, 64));
    assert_eq!(find(&msb, Control::Cc(1)), Some(Raw::Seven(64)));
    // An MSB alone is the coarse half: a 7-bit value, and what an MSB-only echo looks like.
    assert_eq!(find(&msb, Control::Cc14(1)), Some(Raw::Coarse(64)));
    let lsb = d.decode(&cc(33, 5));
    assert_eq!(
        find(&lsb, Control::Cc14(1)),
        Some(Raw::Fourteen((64 << 7) | 5))
    );
    assert!(find(&d.decode(&cc(70, 1)), Control::Cc14(6)).is_none());
}

#[test]
fn reads_nrpn_parameter_and_data_entry() {
    let mut d = Decoder::default();
    // Data entry before any NRPN is selected is only CC 6.
    assert!(find(&d.decode(&cc(6, 1)), Control::Nrpn(0)).is_none());
    d.decode(&cc(99, 2));
    d.decode(&cc(98, 44));
    let param = (2 << 7) | 44;
    let coarse = d.decode(&cc(6, 100));
    assert_eq!(find(&coarse, Control::Nrpn(param)), Some(Raw::Coarse(100)));
    let fine = d.decode(&cc(38, 3));
    assert_eq!(
        find(&fine, Control::Nrpn(param)),
        Some(Raw::Fourteen((100 << 7) | 3))
    );
    // Selecting an RPN ends NRPN data entry.
    d.decode(&cc(101, 0));
    assert!(find(&d.decode(&cc(6, 1)), Control::Nrpn(param)).is_none());
}

#[test]
fn notes_pitch_bend_and_program_change() {
    let mut d = Decoder::default();
    let on = Message::NoteOn {
        channel: 9,
        note: 36,
        velocity: 0,
    };
    assert_eq!(
        d.decode(&on),
        vec![ControlEvent {
            channel: 9,
            control: Control::Note(36),
            raw: Raw::Note(false)
        }],
        "velocity 0 is a release"
    );
    let bend = d.decode(&Message::PitchBend {
        channel: 0,
        value: 16383,
    });
    assert_eq!(bend[0].raw.fraction(), 1.0);
    let program = d.decode(&Message::ProgramChange {
        channel: 0,
        program: 127,
    });
    assert_eq!(program[0].control, Control::Program);
    assert!(d.decode(&Message::Realtime(0xF8)).is_empty());
}

#[test]
fn feedback_messages_per_control() {
    let (raw, m) = feedback_messages(Control::Nrpn(300), 1, 1.0).expect("nrpn");
    assert_eq!(raw, Raw::Fourteen(16383));
    let bytes: Vec<u8> = m.iter().flat_map(Message::to_bytes).collect();
    assert_eq!(
        bytes,
        [0xB1, 99, 2, 0xB1, 98, 44, 0xB1, 6, 127, 0xB1, 38, 127]
    );
    let (_, m) = feedback_messages(Control::PitchBend, 0, 0.5).expect("bend");
    assert_eq!(m[0].to_bytes(), [0xE0, 0x00, 0x40]);
    let (_, m) = feedback_messages(Control::Cc(7), 0, f64::NAN).expect("nan is 0");
    assert_eq!(m[0].to_bytes(), [0xB0, 7, 0]);
}

#[test]
fn an_msb_alone_echoes_a_14_bit_value_at_its_own_resolution() {
    // 300 is MSB 2, LSB 44.
    let sent = Raw::Fourteen(300);
    assert!(sent.echoed_by(Raw::Coarse(2)));
    assert!(sent.echoed_by(Raw::Fourteen(300)));
    assert!(!sent.echoed_by(Raw::Coarse(3)));
    assert!(!sent.echoed_by(Raw::Fourteen(297)));
    assert!(Raw::Seven(64).echoed_by(Raw::Seven(64)));
    assert!(
        !Raw::Seven(2).echoed_by(Raw::Coarse(2)),
        "only a 14-bit value has an MSB"
    );
}
