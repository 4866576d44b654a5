//! Admission, check by check: each test pins the reason its check chooses, and the order
//! test pins which check speaks first when a move fails several.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use kubeknobs_proto::v1::{ControlEvent, RejectReason};

use super::*;
use crate::catalog::{Catalog, TargetKind};
use crate::config::SessionLimits;
use crate::ownership::{Autoscaler, HpaSeen};
use crate::policy::{Action, Policy, Rule, Subject, TargetPattern};
use crate::ratelimit::{Limits, OperatorLimits};
use crate::state::Observed;

/// What a session's admission reads, owned, so each test can change one part.
struct World {
    view: View,
    alice: Identity,
    armed: bool,
    holds: Holds,
    hub: StateHub,
    cooldowns: Cooldowns,
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let web = TargetSpec {
        min: 1,
        ..TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "shop", 20)
    };
    let armed = TargetSpec {
        requires_arm: true,
        ..TargetSpec::for_test("armed", TargetKind::DeploymentReplicas, "shop", 5)
    };
    let restart = TargetSpec {
        cooldown: Duration::from_secs(5),
        ..TargetSpec::for_test("restart", TargetKind::DeploymentRestart, "shop", 1)
    };
    for spec in [
        web,
        armed,
        restart,
        TargetSpec::for_test("floor", TargetKind::HpaMinReplicas, "shop", 20),
        TargetSpec::for_test("secret", TargetKind::DeploymentReplicas, "shop", 20),
    ] {
        catalog.insert(spec);
    }
    catalog
}

fn rule(name: &str, targets: &[&str], actions: &[Action]) -> Rule {
    Rule {
        name: name.into(),
        subjects: vec![Subject::Operator("alice".into())],
        targets: targets.iter().map(|t| TargetPattern((*t).into())).collect(),
        actions: actions.to_vec(),
        deny: false,
    }
}

/// Alice may change web, restart and floor; she sees armed only (until a test grants it),
/// and not secret at all.
fn policy(armed_actions: &[Action]) -> Policy {
    Policy::new(vec![
        rule("ops", &["web", "restart", "floor"], &Action::ALL),
        rule("armed", &["armed"], armed_actions),
    ])
}

fn world() -> World {
    let catalog = catalog();
    World {
        hub: StateHub::new(&catalog),
        view: View {
            catalog,
            policy: policy(&Action::ALL),
            session: SessionLimits::default(),
        },
        alice: Identity::new("alice", vec![]),
        armed: false,
        holds: Holds::new(Duration::ZERO),
        cooldowns: Cooldowns::default(),
    }
}

impl World {
    fn gate(&self) -> Gate<'_> {
        Gate {
            view: &self.view,
            identity: &self.alice,
            armed: self.armed,
            holds: &self.holds,
            hub: &self.hub,
            cooldowns: &self.cooldowns,
        }
    }

    /// The decision on a move of `target` to `value`, with no rate limit.
    fn admit(&self, target: &str, value: f64) -> Decision<'_> {
        self.gate().admit(&event(target, value), Rate::Exempt)
    }

    /// The refusal of a move, which must be refused.
    fn refusal(&self, target: &str, value: f64) -> Refusal {
        match self.admit(target, value) {
            Decision::Refuse(refusal) => refusal,
            other => panic!("{target} = {value}: expected a refusal, got {other:?}"),
        }
    }

    /// The reason a move is refused for.
    fn reason(&self, target: &str, value: f64) -> RejectReason {
        self.refusal(target, value).reason()
    }
}

fn event(target: &str, value: f64) -> ControlEvent {
    ControlEvent {
        seq: 1,
        target: target.into(),
        value,
    }
}

fn written(decision: Decision<'_>) -> (String, i32, Option<String>) {
    match decision {
        Decision::Write {
            target,
            value,
            warning,
        } => (target.name.clone(), value, warning),
        other => panic!("expected a write, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_move_that_passes_every_check_is_written_rounded() {
    let world = world();
    assert_eq!(written(world.admit("web", 9.6)), ("web".into(), 10, None));
}

#[tokio::test(start_paused = true)]
async fn a_target_not_in_the_catalog_or_hidden_is_unknown() {
    let world = world();
    let refusal = world.refusal("nope", 1.0);
    assert_eq!(refusal.reason(), RejectReason::UnknownTarget);
    assert_eq!(
        refusal.to_string(),
        "no target named \"nope\" in the catalog"
    );
    // Catalogued, but no rule lets alice see it: answered as if it did not exist.
    assert_eq!(world.reason("secret", 1.0), RejectReason::UnknownTarget);
}

#[tokio::test(start_paused = true)]
async fn a_visible_target_without_the_action_is_forbidden() {
    let mut world = world();
    world.view.policy = policy(&[]);
    world.armed = true;
    assert_eq!(world.reason("armed", 1.0), RejectReason::Forbidden);
}

#[tokio::test(start_paused = true)]
async fn a_destructive_target_needs_the_arm_held() {
    let mut world = world();
    let refusal = world.refusal("armed", 1.0);
    assert_eq!(refusal.reason(), RejectReason::NotArmed);
    assert_eq!(
        refusal.to_string(),
        "target armed is destructive: hold the arm control while changing it"
    );
    world.armed = true;
    assert_eq!(written(world.admit("armed", 1.0)).1, 1);
}

#[tokio::test(start_paused = true)]
async fn a_target_another_operator_touches_is_held() {
    let world = world();
    world.holds.touch("web", &"bob".into(), 7, true).unwrap();
    assert_eq!(world.reason("web", 3.0), RejectReason::Held);
    world.holds.touch("web", &"bob".into(), 7, false).unwrap();
    assert_eq!(written(world.admit("web", 3.0)).1, 3, "released, no grace");
}

#[tokio::test(start_paused = true)]
async fn a_value_that_is_not_a_number_is_invalid() {
    let world = world();
    for value in [f64::NAN, f64::INFINITY] {
        assert_eq!(world.reason("web", value), RejectReason::InvalidValue);
    }
}

#[tokio::test(start_paused = true)]
async fn a_value_outside_the_bounds_is_out_of_range() {
    let world = world();
    for value in [0.4, 20.6, -3.0] {
        assert_eq!(
            world.reason("web", value),
            RejectReason::OutOfRange,
            "{value}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_an_autoscaler_scales_is_managed() {
    let world = world();
    let hpa = Autoscaler {
        hpa: "web-hpa".into(),
        min: 2,
        max: 10,
        keda: None,
    };
    world.hub.set_autoscaler("web", Some(hpa));
    assert_eq!(world.reason("web", 3.0), RejectReason::Managed);
}

#[tokio::test(start_paused = true)]
async fn an_hpa_min_above_its_max_is_out_of_range() {
    let world = world();
    let hpa = HpaSeen {
        min: 2,
        max: 10,
        current: None,
        desired: None,
    };
    let seen = Observed {
        desired: 2,
        hpa: Some(hpa),
        ..Observed::default()
    };
    world.hub.observe("floor", seen);
    assert_eq!(written(world.admit("floor", 10.0)).1, 10);
    let refusal = world.refusal("floor", 11.0);
    assert_eq!(refusal.reason(), RejectReason::OutOfRange);
    assert!(matches!(refusal, Refusal::Crossed(_)), "{refusal}");
}

#[tokio::test(start_paused = true)]
async fn a_second_press_within_the_cooldown_is_rate_limited() {
    let world = world();
    assert_eq!(written(world.admit("restart", 1.0)).1, 1);
    // The release of the button is no press: answered, and the cooldown is not consulted.
    assert!(matches!(world.admit("restart", 0.0), Decision::Release));
    tokio::time::advance(Duration::from_secs(2)).await;
    let refusal = world.refusal("restart", 1.0);
    assert_eq!(refusal.reason(), RejectReason::RateLimited);
    assert_eq!(
        refusal.to_string(),
        "rate limited: cooldown: target restart acted less than 5s ago (cooldown_ms); try again in 3000 ms"
    );
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(written(world.admit("restart", 1.0)).1, 1);
}

/// A move that fails every check is refused for the first; with that one fixed, for the
/// next: visibility, policy, arm, hold, bounds, other owners.
#[tokio::test(start_paused = true)]
async fn the_first_failing_check_is_the_refusal() {
    let mut world = world();
    world.view.policy = Policy::new(vec![]).covering_any_reviewed_identity(false);
    world.alice = Identity::reviewed("alice", vec![]);
    let hpa = Autoscaler {
        hpa: "armed-hpa".into(),
        min: 1,
        max: 5,
        keda: None,
    };
    world.hub.set_autoscaler("armed", Some(hpa));
    world.holds.touch("armed", &"bob".into(), 7, true).unwrap();
    let expect = |world: &World, reason| assert_eq!(world.reason("armed", 9.0), reason);

    expect(&world, RejectReason::UnknownTarget);
    world.alice = Identity::new("alice", vec![]);
    world.view.policy = policy(&[]);
    expect(&world, RejectReason::Forbidden);
    world.view.policy = policy(&Action::ALL);
    expect(&world, RejectReason::NotArmed);
    world.armed = true;
    expect(&world, RejectReason::Held);
    world.holds = Holds::new(Duration::ZERO);
    expect(&world, RejectReason::OutOfRange);
    assert_eq!(world.reason("armed", 5.0), RejectReason::Managed);
    world.hub.set_autoscaler("armed", None);
    assert_eq!(written(world.admit("armed", 5.0)).1, 5);
}

#[tokio::test(start_paused = true)]
async fn over_the_rate_a_visible_move_waits_and_a_hidden_one_is_refused() {
    let world = world();
    let one = NonZeroU32::new(1).unwrap();
    let limits = OperatorLimits::new(Limits {
        events_per_second: one,
        events_burst: one,
        ..Limits::default()
    });
    let permit = limits.open_session(&Arc::from("alice")).unwrap();
    let gate = world.gate();
    let new = Rate::New(&permit);
    assert_eq!(written(gate.admit(&event("web", 2.0), new)).1, 2);
    let Decision::Wait(wait) = gate.admit(&event("web", 3.0), new) else {
        panic!("over the rate, a visible move waits");
    };
    assert_eq!(wait, Duration::from_secs(1));
    // A move no parking slot is spent on: refused at once, as unknown.
    match gate.admit(&event("secret", 3.0), new) {
        Decision::Refuse(refusal) => assert_eq!(refusal.reason(), RejectReason::UnknownTarget),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A parked move waits for its turn whatever its target; an ending session's moves don't.
    let parked = Rate::Parked(&permit);
    assert!(matches!(
        gate.admit(&event("secret", 3.0), parked),
        Decision::Wait(_)
    ));
    assert_eq!(written(gate.admit(&event("web", 3.0), Rate::Exempt)).1, 3);
    tokio::time::advance(wait).await;
    assert_eq!(written(gate.admit(&event("web", 4.0), parked)).1, 4);
}
