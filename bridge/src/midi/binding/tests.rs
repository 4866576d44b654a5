use std::time::{Duration, Instant};

use super::*;
use crate::midi::control::Encoding;

fn binding(control: Control, mode: Mode) -> Binding {
    Binding {
        control,
        channel: Some(0),
        mode,
        invert: false,
        curve: Curve::Linear,
        pickup: false,
        feedback: true,
        mapping: Mapping {
            address: "midi test".into(),
            target: "web".into(),
            range: Default::default(),
            label: None,
        },
    }
}

fn bounds() -> Bounds {
    Bounds::new(0.0, 20.0, 1.0).expect("bounds")
}

#[test]
fn absolute_cc_is_a_fraction_and_invert_and_log_apply() {
    let now = Instant::now();
    let mut b = binding(Control::Cc(7), Mode::Absolute);
    let mut s = State::default();
    assert_eq!(s.input(&b, Raw::Seven(127), now), Ok(1.0));
    b.invert = true;
    assert_eq!(s.input(&b, Raw::Seven(127), now), Ok(0.0));
    b.invert = false;
    b.curve = Curve::Log;
    let y = s.input(&b, Raw::Seven(64), now).expect("sent");
    assert!(
        y > 0.05 && y < 0.15,
        "log curve is fine at the low end: {y}"
    );
    assert!((b.to_position(b.to_value(0.3)) - 0.3).abs() < 1e-9);
}

#[test]
fn relative_encoders_step_from_the_target_state() {
    let now = Instant::now();
    let b = binding(Control::Cc(16), Mode::Relative(Encoding::TwosComplement));
    let mut s = State::default();
    assert_eq!(s.input(&b, Raw::Seven(1), now), Err(Held::NoState));
    s.feedback(&b, 10.0, bounds(), now);
    let up = s.input(&b, Raw::Seven(1), now).expect("sent");
    assert!((up - (0.5 + 1.0 / 127.0)).abs() < 1e-9);
    let down = s.input(&b, Raw::Seven(127), now).expect("sent");
    assert!((down - 0.5).abs() < 1e-9);
    assert_eq!(Encoding::TwosComplement.delta(64), -64);
    assert_eq!(Encoding::BinaryOffset.delta(63), -1);
    assert_eq!(Encoding::BinaryOffset.delta(66), 2);
    assert_eq!(Encoding::SignMagnitude.delta(65), -1);
    assert_eq!(Encoding::SignMagnitude.delta(3), 3);
}

#[test]
fn buttons_and_toggles() {
    let now = Instant::now();
    let button = binding(Control::Note(36), Mode::Button);
    let mut s = State::default();
    assert_eq!(s.input(&button, Raw::Note(true), now), Ok(1.0));
    assert_eq!(s.input(&button, Raw::Note(false), now), Ok(0.0));
    let toggle = binding(Control::Note(37), Mode::Toggle);
    let mut s = State::default();
    assert_eq!(s.input(&toggle, Raw::Note(true), now), Ok(1.0));
    assert_eq!(s.input(&toggle, Raw::Note(false), now), Err(Held::Ignored));
    assert_eq!(s.input(&toggle, Raw::Note(true), now), Ok(0.0));
    // The target turned on elsewhere: the next press turns it off.
    s.feedback(&toggle, 20.0, bounds(), now);
    assert_eq!(s.input(&toggle, Raw::Note(true), now), Ok(0.0));
}

#[test]
fn pickup_waits_until_the_knob_reaches_or_crosses_the_value() {
    let now = Instant::now();
    let mut b = binding(Control::Cc(0), Mode::Absolute);
    b.pickup = true;
    let mut s = State::default();
    // Someone set the target to 10/20 (position 0.5).
    s.feedback(&b, 10.0, bounds(), now);
    assert_eq!(s.input(&b, Raw::Seven(10), now), Err(Held::NotPickedUp));
    assert_eq!(s.input(&b, Raw::Seven(40), now), Err(Held::NotPickedUp));
    // Crosses 0.5 between 40 and 80: picked up, sent.
    assert!(s.input(&b, Raw::Seven(80), now).is_ok());
    assert!(s.input(&b, Raw::Seven(20), now).is_ok());
    // Our own result coming back does not drop pickup.
    s.feedback(&b, 3.0, bounds(), now);
    assert!(s.input(&b, Raw::Seven(25), now).is_ok());
    // A change made elsewhere does.
    s.feedback(&b, 18.0, bounds(), now + Duration::from_millis(10));
    assert_eq!(s.input(&b, Raw::Seven(30), now), Err(Held::NotPickedUp));
    // 114 would be the echo of the feedback just sent; 113 is a real move close enough to 0.9.
    assert!(
        s.input(&b, Raw::Seven(113), now).is_ok(),
        "within tolerance of 0.9"
    );
}

#[test]
fn the_echo_of_our_feedback_is_not_a_move() {
    let now = Instant::now();
    let b = binding(Control::Cc(0), Mode::Absolute);
    let mut s = State::default();
    let out = s.feedback(&b, 10.0, bounds(), now).expect("feedback");
    assert_eq!(
        out,
        vec![Message::ControlChange {
            channel: 0,
            controller: 0,
            value: 64
        }]
    );
    assert_eq!(s.input(&b, Raw::Seven(64), now), Err(Held::Echo));
    assert!(s.input(&b, Raw::Seven(70), now).is_ok());
    assert!(
        s.input(&b, Raw::Seven(64), now + ECHO_WINDOW).is_ok(),
        "later, the same value is a real move"
    );
}

#[test]
fn feedback_for_14_bit_controls_and_notes() {
    let now = Instant::now();
    let mut s = State::default();
    let out = s
        .feedback(
            &binding(Control::Cc14(1), Mode::Absolute),
            20.0,
            bounds(),
            now,
        )
        .expect("feedback");
    assert_eq!(out.len(), 2);
    let out = s
        .feedback(
            &binding(Control::Note(5), Mode::Toggle),
            20.0,
            bounds(),
            now,
        )
        .expect("feedback");
    assert_eq!(
        out,
        vec![Message::NoteOn {
            channel: 0,
            note: 5,
            velocity: 127
        }]
    );
    assert!(
        s.feedback(
            &binding(Control::Program, Mode::Absolute),
            1.0,
            bounds(),
            now
        )
        .is_none()
    );
}

#[test]
fn cc_buttons_press_at_64_and_up_and_are_never_taken_for_echoes() {
    let now = Instant::now();
    let toggle = binding(Control::Cc(48), Mode::Toggle);
    let mut s = State::default();
    assert_eq!(s.input(&toggle, Raw::Seven(127), now), Ok(1.0));
    assert_eq!(s.input(&toggle, Raw::Seven(0), now), Err(Held::Ignored));
    // The LED is lit by feedback (CC 127); the next press (also 127) still toggles.
    let lit = s.feedback(&toggle, 20.0, bounds(), now).expect("feedback");
    assert_eq!(
        lit,
        vec![Message::ControlChange {
            channel: 0,
            controller: 48,
            value: 127
        }]
    );
    assert_eq!(s.input(&toggle, Raw::Seven(127), now), Ok(0.0));
    let button = binding(Control::Cc(32), Mode::Button);
    assert_eq!(
        State::default().input(&button, Raw::Seven(100), now),
        Ok(1.0)
    );
    assert_eq!(
        State::default().input(&button, Raw::Seven(10), now),
        Ok(0.0)
    );
}
