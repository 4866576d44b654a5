//! Authorization over real gRPC/TLS: who sees which targets, and who may change them.

use kubeknobs_proto::v1::{OutcomeKind, RejectReason, server_message::Msg};
use kubeknobs_tests::grpc::{Gateway, control, next, outcome};

const CONFIG: &str = r#"
[targets.web]
kind = "deployment-replicas"
name = "web"
max = 20
max_writes_per_second = 20
initial = 2
[targets.db]
kind = "statefulset-replicas"
name = "db"
max = 5
max_writes_per_second = 20
initial = 1

[[policy]]
rule = "ops-all"
operators = ["group:ops"]
targets = ["*"]
[[policy]]
rule = "bob-no-db"
operators = ["bob"]
targets = ["db"]
deny = true
[[policy]]
rule = "bob-moves"
operators = ["bob"]
targets = ["web", "db"]
actions = ["move"]
[[policy]]
rule = "carol-watches-web"
operators = ["carol"]
targets = ["web"]
actions = []
"#;

fn names(welcome: &kubeknobs_proto::v1::Welcome) -> Vec<&str> {
    welcome.targets.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn the_catalog_shows_only_visible_targets() {
    let gw = Gateway::start(CONFIG).await;
    let (_a, _ar, alice) = gw.welcome("alice-token").await;
    let (_b, _br, bob) = gw.welcome("bob-token").await;
    let (_c, _cr, carol) = gw.welcome("carol-token").await;
    assert_eq!(names(&alice), ["db", "web"]);
    assert_eq!(names(&bob), ["db", "web"]);
    assert_eq!(names(&carol), ["web"]);
}

#[tokio::test]
async fn forbidden_changes_name_the_rule_and_change_nothing() {
    let gw = Gateway::start(CONFIG).await;
    let (bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    bob.send(control(1, "db", 3.0)).await.expect("send");
    let o = outcome(&mut bob_rx, 1).await;
    assert_eq!(
        (o.kind, o.reason),
        (OutcomeKind::Rejected as i32, RejectReason::Forbidden as i32)
    );
    assert!(o.message.contains("rule \"bob-no-db\""), "{}", o.message);

    let (carol, mut carol_rx, _) = gw.welcome("carol-token").await;
    carol.send(control(1, "web", 9.0)).await.expect("send");
    let o = outcome(&mut carol_rx, 1).await;
    assert_eq!(o.reason, RejectReason::Forbidden as i32);
    assert!(
        o.message.contains("no policy rule grants it"),
        "{}",
        o.message
    );
    carol.send(control(2, "db", 2.0)).await.expect("send");
    let o = outcome(&mut carol_rx, 2).await;
    assert_eq!(
        o.reason,
        RejectReason::UnknownTarget as i32,
        "invisible is unknown"
    );

    bob.send(control(2, "web", 4.0)).await.expect("send");
    assert_eq!(
        outcome(&mut bob_rx, 2).await.kind,
        OutcomeKind::Applied as i32
    );
    let (_p, _pr, probe) = gw.welcome("alice-token").await;
    let desired = |name: &str| {
        probe
            .targets
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.state.as_ref()?.desired)
    };
    assert_eq!(
        desired("db"),
        Some(1.0),
        "forbidden changes changed nothing"
    );
}

#[tokio::test]
async fn state_updates_of_invisible_targets_are_not_sent() {
    let gw = Gateway::start(CONFIG).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    let (_carol, mut carol_rx, _) = gw.welcome("carol-token").await;
    alice.send(control(1, "db", 3.0)).await.expect("send");
    assert_eq!(
        outcome(&mut alice_rx, 1).await.kind,
        OutcomeKind::Applied as i32
    );
    alice.send(control(2, "web", 5.0)).await.expect("send");
    loop {
        if let Msg::State(update) = next(&mut carol_rx).await {
            assert!(
                update.states.iter().all(|s| s.target == "web"),
                "{update:?}"
            );
            if update.states.iter().any(|s| s.desired == Some(5.0)) {
                break;
            }
        }
    }
}

#[tokio::test]
async fn forbidden_changes_are_audited_with_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let config = format!("[audit]\nfile = {:?}\n{CONFIG}", file.display().to_string());
    let gw = Gateway::start(&config).await;
    let (bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    bob.send(control(1, "db", 3.0)).await.expect("send");
    outcome(&mut bob_rx, 1).await;
    let text = std::fs::read_to_string(&file).expect("audit file");
    let line: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(line["operator"], "bob");
    assert_eq!(line["target"], "db");
    assert_eq!(
        (line["old"].as_f64(), line["new"].as_f64()),
        (Some(1.0), Some(3.0))
    );
    assert_eq!(line["outcome"], "rejected");
    assert_eq!(line["reason"], "forbidden");
    assert!(
        line["message"]
            .as_str()
            .expect("message")
            .contains("bob-no-db")
    );
}
