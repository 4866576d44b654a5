//! Identity over real gRPC/TLS: tokens from `auth.tokens_file` rotate without a restart.

use std::time::{Duration, Instant};

use kubeknobs_gateway::auth::hash_token;
use kubeknobs_tests::grpc::Gateway;
use tonic::Code;

fn tokens_file(name: &str, token: &str) -> String {
    format!(
        "[[operators]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
        hash_token(token)
    )
}

#[tokio::test]
async fn a_rotated_token_is_accepted_and_the_old_one_refused_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, tokens_file("dave", "dave-1")).expect("write");
    let config = format!(
        "[auth]\ntokens_file = {:?}\n[targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 5\n",
        path.display().to_string()
    );
    let gw = Gateway::start(&config).await;
    let (_s, _r, welcome) = gw.welcome("dave-1").await;
    assert_eq!(welcome.operator, "dave");

    std::fs::write(&path, tokens_file("dave", "dave-2")).expect("rewrite");
    // The file is polled once a second; wait for the rotation, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match gw.open("dave-2").await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated);
                assert!(
                    Instant::now() < deadline,
                    "the new token was never accepted"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let err = gw.open("dave-1").await.err().map(|s| s.code());
    assert_eq!(err, Some(Code::Unauthenticated), "the old token is revoked");
    let (_a, _ar, alice) = gw.welcome("alice-token").await;
    assert_eq!(alice.operator, "alice", "config operators are unaffected");
}
