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
    std::fs::write(&path, tokens_file("dave", "dave-token-1")).expect("write");
    let config = format!(
        "[auth]\ntokens_file = {:?}\n[targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 5\n",
        path.display().to_string()
    );
    let gw = Gateway::start(&config).await;
    let (_s, _r, welcome) = gw.welcome("dave-token-1").await;
    assert_eq!(welcome.operator, "dave");

    std::fs::write(&path, tokens_file("dave", "dave-token-2")).expect("rewrite");
    // The file is polled once a second; wait for the rotation, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match gw.open("dave-token-2").await {
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
    let err = gw.open("dave-token-1").await.err().map(|s| s.code());
    assert_eq!(err, Some(Code::Unauthenticated), "the old token is revoked");
    let (_a, _ar, alice) = gw.welcome("alice-token").await;
    assert_eq!(alice.operator, "alice", "config operators are unaffected");
}

/// A CA and a client certificate it signed for `cn` in organization `org`, as PEM.
fn client_pki(cn: &str, org: &str) -> (String, tonic::transport::Identity) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "operators CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("sign");
    (
        ca.pem(),
        tonic::transport::Identity::from_pem(cert.pem(), key.serialize_pem()),
    )
}

async fn session_on(
    channel: tonic::transport::Channel,
    token: Option<&str>,
) -> Result<kubeknobs_proto::v1::Welcome, tonic::Status> {
    use kubeknobs_proto::v1::{knobs_client::KnobsClient, server_message::Msg};
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(kubeknobs_tests::grpc::hello())
        .await
        .expect("queue");
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
    }
    let mut stream = KnobsClient::new(channel)
        .session(request)
        .await?
        .into_inner();
    match stream.message().await? {
        Some(kubeknobs_proto::v1::ServerMessage {
            msg: Some(Msg::Welcome(w)),
        }) => Ok(w),
        other => panic!("Welcome first, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_certificate_from_the_configured_ca_names_the_operator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca_pem, erin) = client_pki("erin", "ops");
    let ca_path = dir.path().join("client-ca.pem");
    std::fs::write(&ca_path, ca_pem).expect("write");
    let config = format!(
        "[auth]\nclient_ca = {:?}\n[targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 5\n[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\n",
        ca_path.display().to_string()
    );
    let gw = Gateway::start(&config).await;

    let welcome = session_on(gw.try_channel(Some(erin)).await.expect("mTLS"), None)
        .await
        .expect("a certificate is enough");
    assert_eq!(welcome.operator, "erin");
    assert_eq!(welcome.targets.len(), 1, "group ops from O= sees web");

    // Without a certificate, bearer tokens still work, and no credentials at all are refused.
    let plain = gw.try_channel(None).await.expect("connect");
    let alice = session_on(plain.clone(), Some("alice-token"))
        .await
        .expect("token");
    assert_eq!(alice.operator, "alice");
    let err = session_on(plain, None).await.expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated);

    // A certificate from another CA is refused by the TLS handshake.
    let (_, mallory) = client_pki("mallory", "ops");
    let refused = match gw.try_channel(Some(mallory)).await {
        Err(_) => true,
        Ok(channel) => session_on(channel, None).await.is_err(),
    };
    assert!(
        refused,
        "a certificate the configured CA did not sign is refused"
    );
}

/// A gateway on the fake API server `api` with `auth.token_review` on, the standard operators,
/// the Deployment `web`, and `rest` (auth keys go in `auth`, policy in `rest`).
async fn reviewing_gateway(
    api: &kubeknobs_tests::fakeapi::FakeApiServer,
    auth: &str,
    rest: &str,
) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let text = format!(
        "[cluster]\nbackend = \"kube\"\nkubeconfig = {:?}\n[auth]\ntoken_review = true\n{auth}\n{}\n\
         [targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 5\n{rest}",
        kubeconfig.display().to_string(),
        kubeknobs_tests::grpc::operators_toml(),
    );
    let config = kubeknobs_gateway::config::Config::parse_with_tls(
        &text,
        dir.path().join("gw.toml").as_path(),
        kubeknobs_gateway::config::TlsIdentity::default(),
    )
    .expect("config");
    (Gateway::start_config(config).await, dir)
}

const OPS_SEE_ALL: &str = "[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\n";

#[tokio::test]
async fn a_kubernetes_token_is_checked_with_a_token_review() {
    use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    // `kubectl create token frank --audience kubeknobs`: the gateway's default audience.
    api.add_token_for(
        "sa-token",
        "system:serviceaccount:default:frank",
        &["ops"],
        &["kubeknobs"],
    );
    let (gw, _dir) = reviewing_gateway(&api, "", OPS_SEE_ALL).await;

    let (_s, _r, welcome) = gw.welcome("sa-token").await;
    assert_eq!(welcome.operator, "system:serviceaccount:default:frank");
    assert_eq!(welcome.targets.len(), 1, "its group ops sees web");
    let review = api
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/tokenreviews"))
        .expect("a TokenReview was posted");
    assert_eq!(review.method, "POST");
    assert!(
        review.body.contains(r#""audiences":["kubeknobs"]"#),
        "the review asks for the kubeknobs audience: {}",
        review.body
    );
    let reviews = || {
        api.requests()
            .iter()
            .filter(|r| r.path.ends_with("/tokenreviews"))
            .count()
    };
    let (_s2, _r2, again) = gw.welcome("sa-token").await;
    assert_eq!(again.operator, "system:serviceaccount:default:frank");
    assert_eq!(
        reviews(),
        1,
        "an authenticated token is remembered for a while"
    );

    let (_a, _ar, alice) = gw.welcome("alice-token").await;
    assert_eq!(alice.operator, "alice", "configured tokens need no review");

    let Err(err) = gw.open("expired-token").await else {
        panic!("an unknown token must be refused")
    };
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("token is invalid or expired"),
        "{}",
        err.message()
    );
    assert!(
        !err.message().contains("expired-token"),
        "the secret is not echoed"
    );
    assert!(gw.open("expired-token").await.is_err());
    assert_eq!(reviews(), 3, "a refusal is never remembered");
}

#[tokio::test]
async fn a_token_minted_for_the_api_server_is_refused() {
    use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    // `kubectl create token frank`: valid against the API server itself, so a bridge must not
    // need one (a stolen bridge token would be an API server credential).
    api.add_token("api-token", "system:serviceaccount:default:frank", &["ops"]);
    api.add_token_for(
        "other-token",
        "system:serviceaccount:default:frank",
        &["ops"],
        &["vault"],
    );
    let (gw, _dir) = reviewing_gateway(&api, "", OPS_SEE_ALL).await;
    for token in ["api-token", "other-token"] {
        let Err(err) = gw.open(token).await else {
            panic!("{token}: a token for another audience must be refused")
        };
        assert_eq!(err.code(), Code::Unauthenticated, "{token}");
        assert!(
            err.message()
                .contains("is invalid for the target audiences"),
            "{token}: {}",
            err.message()
        );
    }

    // An admin who chooses other audiences gets them asked for.
    let (gw, _dir) =
        reviewing_gateway(&api, "token_review_audiences = [\"vault\"]", OPS_SEE_ALL).await;
    let (_s, _r, welcome) = gw.welcome("other-token").await;
    assert_eq!(welcome.operator, "system:serviceaccount:default:frank");
}

#[tokio::test]
async fn a_reviewed_identity_gets_nothing_unless_a_policy_rule_names_it() {
    use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
    use kubeknobs_tests::grpc::{control, outcome};
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    let groups = [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    ];
    let who = "system:serviceaccount:kube-system:default";
    api.add_token_for("stray-token", who, &groups, &["kubeknobs"]);

    // No [[policy]]: configured operators may do everything, a reviewed identity nothing.
    let (gw, _dir) = reviewing_gateway(&api, "", "").await;
    let (_a, _ar, alice) = gw.welcome("alice-token").await;
    assert_eq!(
        alice.targets.len(),
        1,
        "configured operators keep the open default"
    );
    let (tx, mut rx, welcome) = gw.welcome("stray-token").await;
    assert_eq!(welcome.operator, who);
    assert!(welcome.targets.is_empty(), "{:?}", welcome.targets);
    tx.send(control(1, "web", 0.8)).await.expect("send");
    let o = outcome(&mut rx, 1).await;
    assert_eq!(
        o.kind,
        kubeknobs_proto::v1::OutcomeKind::Rejected as i32,
        "{o:?}"
    );
    assert_eq!(api.write_count(), 0);

    // A `*` rule does not name it either.
    let anyone = "[[policy]]\noperators = [\"*\"]\ntargets = [\"*\"]\n";
    let (gw, _dir) = reviewing_gateway(&api, "", anyone).await;
    let (_s, _r, welcome) = gw.welcome("stray-token").await;
    assert!(welcome.targets.is_empty(), "{:?}", welcome.targets);

    // A rule naming it does; so does the explicit opt-in.
    let named = format!("[[policy]]\noperators = [{who:?}]\ntargets = [\"web\"]\n");
    let (gw, _dir) = reviewing_gateway(&api, "", &named).await;
    assert_eq!(gw.welcome("stray-token").await.2.targets.len(), 1);
    let (gw, _dir) = reviewing_gateway(&api, "token_review_any_identity = true", "").await;
    assert_eq!(gw.welcome("stray-token").await.2.targets.len(), 1);
}
