//! Scaling, rounding, clamping and argument rules.

use super::*;

fn fader(lo: f64, hi: f64) -> Mapping {
    Mapping {
        address: "/1/fader1".into(),
        target: "web".into(),
        range: Range::new(lo, hi).expect("valid range"),
        label: None,
    }
}

fn replicas() -> Bounds {
    Bounds::new(0.0, 20.0, 1.0).expect("valid bounds")
}

#[test]
fn scales_rounds_and_clamps() {
    let m = fader(0.0, 1.0);
    assert_eq!(m.to_target(0.5, &replicas()), Ok(10.0));
    assert_eq!(m.to_target(0.0, &replicas()), Ok(0.0));
    assert_eq!(m.to_target(1.0, &replicas()), Ok(20.0));
    assert_eq!(m.to_target(0.52, &replicas()), Ok(10.0));
    assert_eq!(m.to_target(0.53, &replicas()), Ok(11.0));
    assert_eq!(m.to_target(-3.0, &replicas()), Ok(0.0));
    assert_eq!(m.to_target(7.0, &replicas()), Ok(20.0));
}

#[test]
fn scales_other_ranges_and_bounds() {
    let midi = fader(0.0, 127.0);
    let b = Bounds::new(2.0, 6.0, 1.0).expect("valid bounds");
    assert_eq!(midi.to_target(127.0, &b), Ok(6.0));
    assert_eq!(midi.to_target(63.5, &b), Ok(4.0));
    let continuous = Bounds::new(0.0, 1.0, 0.0).expect("valid bounds");
    assert_eq!(fader(0.0, 2.0).to_target(0.5, &continuous), Ok(0.25));
}

#[test]
fn refuses_non_finite_values() {
    let m = fader(0.0, 1.0);
    assert!(matches!(
        m.to_target(f64::NAN, &replicas()),
        Err(Error::NotFinite(_))
    ));
    assert!(matches!(
        m.to_target(f64::INFINITY, &replicas()),
        Err(Error::NotFinite(_))
    ));
    assert!(matches!(
        m.to_osc(f64::NAN, &replicas()),
        Err(Error::NotFinite(_))
    ));
    let args = [OscType::Float(f32::NAN)];
    assert!(matches!(
        arg_value(&args, &Range::default()),
        Err(Error::NotFinite(_))
    ));
}

#[test]
fn inverse_maps_for_feedback() {
    let m = fader(0.0, 1.0);
    assert_eq!(m.to_osc(10.0, &replicas()), Ok(0.5));
    assert_eq!(m.to_osc(25.0, &replicas()), Ok(1.0));
    assert_eq!(fader(0.0, 127.0).to_osc(20.0, &replicas()), Ok(127.0));
    let fixed = Bounds::new(3.0, 3.0, 1.0).expect("valid bounds");
    assert_eq!(m.to_osc(3.0, &fixed), Ok(0.0));
}

#[test]
fn reads_number_and_bool_arguments() {
    let r = Range::new(0.0, 127.0).expect("valid range");
    assert_eq!(arg_value(&[OscType::Int(64)], &r), Ok(64.0));
    assert_eq!(arg_value(&[OscType::Long(3)], &r), Ok(3.0));
    assert_eq!(arg_value(&[OscType::Float(0.25)], &r), Ok(0.25));
    assert_eq!(
        arg_value(&[OscType::Double(1.5), OscType::Nil], &r),
        Ok(1.5)
    );
    assert_eq!(arg_value(&[OscType::Bool(true)], &r), Ok(127.0));
    assert_eq!(arg_value(&[OscType::Bool(false)], &r), Ok(0.0));
}

#[test]
fn refuses_other_arguments() {
    let r = Range::default();
    assert_eq!(arg_value(&[], &r), Err(Error::NoArgument));
    assert_eq!(
        arg_value(&[OscType::String("1".into())], &r),
        Err(Error::UnsupportedArgument("string"))
    );
    assert_eq!(
        arg_value(&[OscType::Nil], &r),
        Err(Error::UnsupportedArgument("nil"))
    );
}

#[test]
fn refuses_bad_ranges_and_bounds() {
    assert!(Range::new(1.0, 1.0).is_err());
    assert!(Range::new(1.0, 0.0).is_err());
    assert!(Range::new(f64::NAN, 1.0).is_err());
    assert!(Bounds::new(5.0, 1.0, 1.0).is_err());
    assert!(Bounds::new(0.0, 1.0, -1.0).is_err());
    assert!(Bounds::new(0.0, f64::INFINITY, 1.0).is_err());
}

#[test]
fn indexes_by_address_and_target() {
    let mut second = fader(0.0, 1.0);
    second.address = "/1/fader2".into();
    second.target = "api".into();
    let all = Mappings::new(vec![fader(0.0, 1.0), second]);
    assert_eq!(all.len(), 2);
    assert_eq!(
        all.by_address("/1/fader2").map(|m| m.target.as_str()),
        Some("api")
    );
    assert!(all.by_address("/nope").is_none());
    assert_eq!(all.for_target("web").count(), 1);
}
