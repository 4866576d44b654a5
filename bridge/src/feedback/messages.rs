//! Pure: the OSC messages that show a target's state on one mapped control.

use kubeknobs_proto::v1::TargetState;
use rosc::{OscMessage, OscType};
use tracing::warn;

use crate::mapping::{Bounds, Mapping};

/// The OSC messages that show `state` on the control of `mapping`: its fader position (when
/// `desired` and the bounds are known) and its label text (when it has a label).
pub fn messages(
    mapping: &Mapping,
    bounds: Option<&Bounds>,
    state: &TargetState,
) -> Vec<OscMessage> {
    let mut out = Vec::with_capacity(2);
    if let (Some(desired), Some(bounds)) = (state.desired, bounds) {
        match mapping.to_osc(desired, bounds) {
            // OSC floats are 32-bit; control ranges are small, so nothing that matters is lost.
            Ok(v) => out.push(OscMessage {
                addr: mapping.address.clone(),
                args: vec![OscType::Float(v as f32)],
            }),
            Err(e) => warn!(target_name = %state.target, error = %e, "cannot show desired value"),
        }
    }
    if let Some(label) = &mapping.label {
        out.push(OscMessage {
            addr: label.clone(),
            args: vec![OscType::String(label_text(state))],
        });
    }
    out
}

/// `"<target> <ready>/<desired>"`, e.g. `web 7/10`; an unknown number shows as `?`. An HPA
/// bound shows its value and the HPA's replicas (`floor 2 (HPA at 3, wants 4)`); who else
/// manages the value follows after ` · ` (`web 7/10 · HorizontalPodAutoscaler web-hpa (2..10)`).
pub fn label_text(state: &TargetState) -> String {
    // The proto says: with an error set, the values are the last known ones.
    let stale = if state.error.is_empty() {
        ""
    } else {
        " (stale)"
    };
    let mut text = match state.autoscaler_desired {
        Some(wants) => format!(
            "{} {} (HPA at {}, wants {}){stale}",
            state.target,
            number(state.desired),
            number(state.current),
            number(Some(wants))
        ),
        None => format!(
            "{} {}/{}{stale}",
            state.target,
            number(state.ready),
            number(state.desired)
        ),
    };
    if !state.managed_by.is_empty() {
        text.push_str(" · ");
        text.push_str(&state.managed_by);
    }
    text
}

/// A value for humans: whole numbers without decimals, `?` when unknown.
pub fn number(value: Option<f64>) -> String {
    match value {
        None => "?".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Range;

    fn state(desired: Option<f64>, ready: Option<f64>) -> TargetState {
        TargetState {
            target: "web".into(),
            desired,
            ready,
            ..Default::default()
        }
    }

    fn fader(label: Option<&str>) -> Mapping {
        Mapping {
            address: "/1/fader1".into(),
            target: "web".into(),
            range: Range::default(),
            label: label.map(Into::into),
        }
    }

    #[test]
    fn builds_fader_and_label_messages() {
        let bounds = Bounds::new(0.0, 20.0, 1.0).expect("valid bounds");
        let out = messages(
            &fader(Some("/1/label1")),
            Some(&bounds),
            &state(Some(10.0), Some(7.0)),
        );
        assert_eq!(
            out,
            vec![
                OscMessage {
                    addr: "/1/fader1".into(),
                    args: vec![OscType::Float(0.5)]
                },
                OscMessage {
                    addr: "/1/label1".into(),
                    args: vec![OscType::String("web 7/10".into())]
                },
            ]
        );
    }

    #[test]
    fn labels_last_known_values_as_stale_when_state_has_an_error() {
        let mut s = state(Some(10.0), Some(7.0));
        s.error = "stale: gateway unreachable".into();
        assert_eq!(label_text(&s), format!("{} 7/10 (stale)", s.target));
    }

    #[test]
    fn shows_unknowns_as_question_marks() {
        let bounds = Bounds::new(0.0, 20.0, 1.0).expect("valid bounds");
        let out = messages(&fader(Some("/1/label1")), Some(&bounds), &state(None, None));
        assert_eq!(
            out,
            vec![OscMessage {
                addr: "/1/label1".into(),
                args: vec![OscType::String("web ?/?".into())]
            }]
        );
        // Without bounds there is no fader position to show, and without a label nothing at all.
        assert!(messages(&fader(None), None, &state(Some(3.0), None)).is_empty());
    }

    #[test]
    fn labels_say_who_else_manages_the_value_and_an_hpa_bound_its_replicas() {
        let mut s = state(Some(10.0), Some(7.0));
        s.managed_by = "HorizontalPodAutoscaler web-hpa (2..10)".into();
        assert_eq!(
            label_text(&s),
            "web 7/10 · HorizontalPodAutoscaler web-hpa (2..10)"
        );
        let floor = TargetState {
            target: "floor".into(),
            desired: Some(2.0),
            current: Some(3.0),
            autoscaler_desired: Some(4.0),
            ..Default::default()
        };
        assert_eq!(label_text(&floor), "floor 2 (HPA at 3, wants 4)");
    }

    #[test]
    fn formats_numbers_for_humans() {
        assert_eq!(number(Some(7.0)), "7");
        assert_eq!(number(Some(0.5)), "0.5");
        assert_eq!(number(None), "?");
        assert_eq!(label_text(&state(Some(10.0), Some(7.0))), "web 7/10");
        assert_eq!(label_text(&state(Some(10.0), None)), "web ?/10");
    }
}
