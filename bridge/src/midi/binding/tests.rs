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
        encoder: Default::default(),
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
    // One click is one step of the target (1 of 0..20) unless `step` says otherwise.
    let up = s.input(&b, Raw::Seven(1), now).expect("sent");
    assert!((up - 11.0 / 20.0).abs() < 1e-9, "{up}");
    let later = now + FAST_CLICK;
    let down = s.input(&b, Raw::Seven(127), later).expect("sent");
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
    // Long after those presses, the target turned on elsewhere: the next press turns it off.
    let later = now + RECENT + Duration::from_millis(1);
    s.feedback(&toggle, 20.0, bounds(), later);
    assert_eq!(s.input(&toggle, Raw::Note(true), later), Ok(0.0));
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
fn feedback_is_what_the_control_shows_and_moves_are_never_echo_checked_here() {
    let now = Instant::now();
    let b = binding(Control::Cc(0), Mode::Absolute);
    let mut s = State::default();
    let (raw, out) = s.feedback(&b, 10.0, bounds(), now).expect("feedback");
    assert_eq!(raw, Raw::Seven(64));
    assert_eq!(
        out,
        vec![Message::ControlChange {
            channel: 0,
            controller: 0,
            value: 64
        }]
    );
    // Echoes are told apart by `shown`, which knows whether feedback reached this device.
    assert!(s.input(&b, Raw::Seven(64), now).is_ok());
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
    assert_eq!(out.1.len(), 2);
    let out = s
        .feedback(
            &binding(Control::Note(5), Mode::Toggle),
            20.0,
            bounds(),
            now,
        )
        .expect("feedback");
    assert_eq!(
        out.1,
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
    let (_, lit) = s.feedback(&toggle, 20.0, bounds(), now).expect("feedback");
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

#[test]
fn encoder_step_is_target_units_per_click_and_fast_clicks_accelerate() {
    let t0 = Instant::now();
    let mut b = binding(Control::Cc(16), Mode::Relative(Encoding::BinaryOffset));
    b.encoder.step = Some(2.0);
    let mut s = State::default();
    s.feedback(&b, 10.0, bounds(), t0);
    let y = s.input(&b, Raw::Seven(65), t0).expect("sent");
    assert!((y - 12.0 / 20.0).abs() < 1e-9, "{y}");
    // Without acceleration, fast clicks are still one step each.
    let y = s
        .input(&b, Raw::Seven(65), t0 + Duration::from_millis(10))
        .expect("sent");
    assert!((y - 14.0 / 20.0).abs() < 1e-9, "{y}");

    b.encoder = Encoder {
        step: Some(1.0),
        acceleration: Some(3.0),
    };
    let mut s = State::default();
    s.feedback(&b, 0.0, bounds(), t0);
    let ms = |n| t0 + Duration::from_millis(n);
    // Fast clicks up: factors 1, 2, 3, 3 → 1, 3, 6, 9.
    let mut got = Vec::new();
    for (i, at) in [ms(0), ms(20), ms(40), ms(60)].into_iter().enumerate() {
        let y = s.input(&b, Raw::Seven(65), at).expect("sent");
        got.push((y * 20.0).round());
        assert!(i < 4);
    }
    assert_eq!(got, [1.0, 3.0, 6.0, 9.0]);
    // A slow click, or one the other way, starts again at 1.
    let y = s.input(&b, Raw::Seven(63), ms(70)).expect("sent");
    assert_eq!((y * 20.0).round(), 8.0);
    let y = s.input(&b, Raw::Seven(63), ms(500)).expect("sent");
    assert_eq!((y * 20.0).round(), 7.0);
}

#[test]
fn a_toggle_flips_its_pending_write_not_an_unrelated_state_update() {
    let now = Instant::now();
    let toggle = binding(Control::Note(37), Mode::Toggle);
    let mut s = State::default();
    s.feedback(&toggle, 0.0, bounds(), now);
    assert_eq!(s.input(&toggle, Raw::Note(true), now), Ok(1.0));
    // The ready count changes while the write is pending: the cluster still says off.
    s.feedback(&toggle, 0.0, bounds(), now + Duration::from_millis(100));
    // The second press undoes the first rather than repeating it.
    let at = now + Duration::from_millis(200);
    assert_eq!(s.input(&toggle, Raw::Note(true), at), Ok(0.0));
    // The cluster reports on (the first write), then off (the second): the next press turns on.
    s.feedback(&toggle, 20.0, bounds(), at);
    s.feedback(&toggle, 0.0, bounds(), at);
    assert_eq!(s.input(&toggle, Raw::Note(true), at), Ok(1.0));
    s.feedback(&toggle, 20.0, bounds(), at);
    // Confirmed; someone else turns it off: the next press turns it on again.
    s.feedback(&toggle, 0.0, bounds(), at);
    assert_eq!(s.input(&toggle, Raw::Note(true), at), Ok(1.0));
    // A press whose write never shows (refused) stops counting after RECENT.
    let late = at + RECENT + Duration::from_millis(1);
    assert_eq!(s.input(&toggle, Raw::Note(true), late), Ok(1.0));
}

#[test]
fn a_hold_is_explained_once_per_episode() {
    let mut s = State::default();
    assert!(s.explain(Held::NotPickedUp));
    assert!(!s.explain(Held::NotPickedUp));
    assert!(s.explain(Held::Echo), "another reason is a new episode");
    s.released();
    assert!(s.explain(Held::Echo));
}
