//! The fake API server, proven against the real kube client: every assertion here goes
//! through kube-rs over HTTP, as the gateway will.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Error};
use kubeknobs_tests::fakeapi::{FakeApiServer, Fault, Kind};
use serde_json::json;

/// Fails the test, instead of hanging it, if `f` takes more than 10 s.
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn fake_with_web(replicas: i32) -> (FakeApiServer, Api<Deployment>) {
    let fake = FakeApiServer::start().await;
    fake.add(Kind::Deployment, "default", "web", replicas);
    let api = Api::namespaced(fake.client(), "default");
    (fake, api)
}

fn replicas(scale: &Scale) -> Option<i32> {
    scale.spec.as_ref().and_then(|s| s.replicas)
}

/// The `(code, reason)` of a `kube::Error::Api`, or a panic naming the other error.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

fn merge(replicas: i32) -> Patch<serde_json::Value> {
    Patch::Merge(json!({ "spec": { "replicas": replicas } }))
}

fn manager(name: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(name.into()),
        ..PatchParams::default()
    }
}

/// A client that sees 429/503/504 as errors instead of retrying them.
fn no_retry_client(fake: &FakeApiServer) -> Client {
    let mut config = fake.config();
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn get_scale_answers_an_autoscaling_v1_scale() {
    let (fake, deployments) = fake_with_web(3).await;
    fake.add(Kind::StatefulSet, "db", "pg", 2);
    let scale = within("get_scale", deployments.get_scale("web"))
        .await
        .expect("get_scale");
    assert_eq!(replicas(&scale), Some(3));
    assert_eq!(scale.status.map(|s| s.replicas), Some(3));
    assert_eq!(scale.metadata.name.as_deref(), Some("web"));

    let statefulsets: Api<StatefulSet> = Api::namespaced(fake.client(), "db");
    let scale = within("get_scale sts", statefulsets.get_scale("pg"))
        .await
        .expect("get_scale sts");
    assert_eq!(replicas(&scale), Some(2));
    let requests = fake.requests();
    let paths: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /apis/apps/v1/namespaces/default/deployments/web/scale",
            "GET /apis/apps/v1/namespaces/db/statefulsets/pg/scale",
        ]
    );
}

#[tokio::test]
async fn patch_scale_changes_replicas_records_the_manager_and_counts_the_write() {
    let (fake, deployments) = fake_with_web(1).await;
    let before = within("get", deployments.get("web")).await.expect("get");
    let patched = within(
        "patch",
        deployments.patch_scale("web", &manager("kubeknobs"), &merge(5)),
    )
    .await;
    assert_eq!(patched.ok().as_ref().and_then(replicas), Some(5));
    assert_eq!(fake.replicas(Kind::Deployment, "default", "web"), Some(5));
    assert_eq!(fake.write_count(), 1);

    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("PATCH recorded");
    assert_eq!(
        patch.query_param("fieldManager").as_deref(),
        Some("kubeknobs")
    );
    assert_eq!(
        patch.header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.body, r#"{"spec":{"replicas":5}}"#);

    let after = within("get", deployments.get("web")).await.expect("get");
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.metadata.generation, Some(2));
    let fields = after.metadata.managed_fields.unwrap_or_default();
    let entry = fields
        .iter()
        .find(|f| f.manager.as_deref() == Some("kubeknobs"))
        .expect("kubeknobs entry");
    assert_eq!(entry.operation.as_deref(), Some("Update"));
    assert_eq!(entry.subresource.as_deref(), Some("scale"));
    // As on a real API server: an Update through the scale subresource records no time, while
    // the creator's entry keeps its own, so "latest time" would name the creator.
    assert!(entry.time.is_none(), "{entry:?}");
    assert!(
        fields
            .iter()
            .any(|f| f.manager.as_deref() != Some("kubeknobs") && f.time.is_some())
    );
    // kubeknobs now owns spec.replicas alone.
    let owners: Vec<_> = fields
        .iter()
        .filter(|f| {
            f.fields_v1
                .as_ref()
                .is_some_and(|v| v.0.pointer("/f:spec/f:replicas").is_some())
        })
        .filter_map(|f| f.manager.as_deref())
        .collect();
    assert_eq!(owners, ["kubeknobs"]);
}

#[tokio::test]
async fn statefulsets_accept_strategic_and_apply_patches() {
    let fake = FakeApiServer::start().await;
    fake.add(Kind::StatefulSet, "default", "pg", 1);
    let api: Api<StatefulSet> = Api::namespaced(fake.client(), "default");
    let strategic = Patch::Strategic(json!({ "spec": { "replicas": 2 } }));
    within(
        "strategic",
        api.patch_scale("pg", &manager("a"), &strategic),
    )
    .await
    .expect("strategic");
    assert_eq!(fake.replicas(Kind::StatefulSet, "default", "pg"), Some(2));
    let apply = Patch::Apply(
        json!({ "apiVersion": "autoscaling/v1", "kind": "Scale", "spec": { "replicas": 4 } }),
    );
    within(
        "apply",
        api.patch_scale("pg", &PatchParams::apply("b"), &apply),
    )
    .await
    .expect("apply");
    assert_eq!(fake.replicas(Kind::StatefulSet, "default", "pg"), Some(4));
    assert_eq!(fake.write_count(), 2);
    let sts = within("get", api.get("pg")).await.expect("get");
    let ops: Vec<_> = sts
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.manager, f.operation))
        .collect();
    assert!(
        ops.contains(&(Some("b".into()), Some("Apply".into()))),
        "{ops:?}"
    );
}

#[tokio::test]
async fn watcher_sees_an_external_scale_and_only_its_object() {
    let (fake, deployments) = fake_with_web(2).await;
    fake.add(Kind::Deployment, "default", "other", 1);
    let config = watcher::Config::default().fields("metadata.name=web");
    let mut events = watcher(deployments, config).boxed();
    let init: Vec<_> = within(
        "initial list",
        (&mut events).take(3).try_collect::<Vec<_>>(),
    )
    .await
    .expect("init");
    assert!(
        matches!(init.as_slice(), [watcher::Event::Init, watcher::Event::InitApply(d), watcher::Event::InitDone]
        if d.metadata.name.as_deref() == Some("web"))
    );

    fake.scale_externally(Kind::Deployment, "default", "other", 9, "kubectl");
    fake.scale_externally(Kind::Deployment, "default", "web", 7, "kubectl");
    let event = within("watch event", events.try_next())
        .await
        .expect("watch ok")
        .expect("stream open");
    let watcher::Event::Apply(web) = event else {
        panic!("expected Apply, got {event:?}")
    };
    assert_eq!(web.metadata.name.as_deref(), Some("web"));
    assert_eq!(web.spec.and_then(|s| s.replicas), Some(7));
    let managers: Vec<_> = web
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "kubectl"), "{managers:?}");

    fake.set_ready(Kind::Deployment, "default", "web", 5);
    let event = within("status event", events.try_next())
        .await
        .expect("watch ok")
        .expect("stream open");
    let watcher::Event::Apply(web) = event else {
        panic!("expected Apply, got {event:?}")
    };
    assert_eq!(web.status.and_then(|s| s.ready_replicas), Some(5));

    // Exactly what kube 5's default watcher::Config sends: a list, then a watch from its version
    // (kube's query strings start with a stray `&`: `...deployments?&fieldSelector=...`).
    let requests = fake.requests();
    let queries: Vec<_> = requests.iter().map(|r| r.query.as_str()).collect();
    let list_rv = "3"; // two adds after the initial version 1
    assert_eq!(
        queries,
        [
            "&fieldSelector=metadata.name%3Dweb&limit=500",
            &format!(
                "&watch=true&timeoutSeconds=290&fieldSelector=metadata.name%3Dweb&allowWatchBookmarks=true&resourceVersion={list_rv}"
            ),
        ]
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/apis/apps/v1/namespaces/default/deployments")
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let (fake, deployments) = fake_with_web(2).await;
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(deployments, config).boxed();
    let init = within(
        "initial events",
        (&mut events).take(3).try_collect::<Vec<_>>(),
    )
    .await;
    assert!(matches!(
        init.expect("init").as_slice(),
        [
            watcher::Event::Init,
            watcher::Event::InitApply(_),
            watcher::Event::InitDone
        ]
    ));
    fake.scale_externally(Kind::Deployment, "default", "web", 3, "kubectl");
    let event = within("watch event", events.try_next())
        .await
        .expect("watch ok");
    assert!(
        matches!(event, Some(watcher::Event::Apply(d)) if d.spec.as_ref().and_then(|s| s.replicas) == Some(3))
    );
    let watch = &fake.requests()[0];
    assert_eq!(
        watch.query_param("sendInitialEvents").as_deref(),
        Some("true")
    );
    assert_eq!(
        watch.query_param("resourceVersionMatch").as_deref(),
        Some("NotOlderThan")
    );
    assert_eq!(watch.query_param("resourceVersion").as_deref(), Some("0"));
}

#[tokio::test]
async fn injected_status_faults_come_back_as_api_errors() {
    let (fake, _) = fake_with_web(1).await;
    let deployments: Api<Deployment> = Api::namespaced(no_retry_client(&fake), "default");
    for (code, reason) in [
        (409, "Conflict"),
        (429, "TooManyRequests"),
        (500, "InternalError"),
    ] {
        fake.inject("PATCH", "/deployments/web/scale", Fault::Status(code), 1);
        let result = within(
            "faulted patch",
            deployments.patch_scale("web", &manager("k"), &merge(4)),
        )
        .await;
        assert_eq!(api_error(result), (code, reason.to_owned()));
    }
    assert_eq!(fake.replicas(Kind::Deployment, "default", "web"), Some(1));
    assert_eq!(fake.write_count(), 0);
    // The faults are used up: the next write goes through.
    within(
        "patch",
        deployments.patch_scale("web", &manager("k"), &merge(4)),
    )
    .await
    .expect("patch");
    assert_eq!(fake.write_count(), 1);
}

#[tokio::test]
async fn kube_default_client_retries_a_429_by_itself() {
    let (fake, deployments) = fake_with_web(1).await;
    fake.inject("PATCH", "/scale", Fault::Status(429), 1);
    within(
        "patch",
        deployments.patch_scale("web", &manager("k"), &merge(3)),
    )
    .await
    .expect("retried patch");
    assert_eq!(fake.replicas(Kind::Deployment, "default", "web"), Some(3));
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        2
    );
}

#[tokio::test]
async fn injected_delay_delays_the_answer() {
    let (fake, deployments) = fake_with_web(1).await;
    let delay = Duration::from_millis(300);
    fake.inject("GET", "/deployments/web/scale", Fault::Delay(delay), 1);
    let started = Instant::now();
    within("delayed get", deployments.get_scale("web"))
        .await
        .expect("get_scale");
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_objects_and_paths_are_404_statuses() {
    let (fake, deployments) = fake_with_web(1).await;
    assert_eq!(
        api_error(within("get", deployments.get_scale("nope")).await),
        (404, "NotFound".into())
    );
    let patch = within(
        "patch",
        deployments.patch_scale("nope", &manager("k"), &merge(1)),
    )
    .await;
    assert_eq!(api_error(patch), (404, "NotFound".into()));
    let pods: Api<Pod> = Api::namespaced(fake.client(), "default");
    assert_eq!(
        api_error(within("pods", pods.get("x")).await),
        (404, "NotFound".into())
    );
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn malformed_and_invalid_writes_are_rejected_with_statuses() {
    let (fake, deployments) = fake_with_web(1).await;
    let client = fake.client();
    let path = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    for (content_type, body, code) in [
        ("application/merge-patch+json", "{", 400),
        (
            "application/merge-patch+json",
            r#"{"spec":{"replicas":"two"}}"#,
            400,
        ),
        ("text/plain", "{}", 415),
    ] {
        let request = axum::http::Request::patch(path)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec());
        let result = within(
            "raw patch",
            client.request::<serde_json::Value>(request.expect("request")),
        )
        .await;
        assert_eq!(api_error(result).0, code, "{content_type} {body}");
    }
    let negative = within(
        "negative",
        deployments.patch_scale("web", &manager("k"), &merge(-1)),
    )
    .await;
    assert_eq!(api_error(negative), (422, "Invalid".into()));
    let stale =
        Patch::Merge(json!({ "metadata": { "resourceVersion": "1" }, "spec": { "replicas": 2 } }));
    let conflict = within(
        "stale",
        deployments.patch_scale("web", &manager("k"), &stale),
    )
    .await;
    assert_eq!(api_error(conflict), (409, "Conflict".into()));
    assert_eq!(fake.replicas(Kind::Deployment, "default", "web"), Some(1));
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn dry_run_answers_but_changes_nothing() {
    let (fake, deployments) = fake_with_web(1).await;
    let before = within("get", deployments.get("web"))
        .await
        .expect("get")
        .metadata
        .resource_version;
    let params = manager("k").dry_run();
    let answer = within(
        "dry run",
        deployments.patch_scale("web", &params, &merge(9)),
    )
    .await
    .expect("dry run");
    assert_eq!(replicas(&answer), Some(9));
    assert_eq!(fake.replicas(Kind::Deployment, "default", "web"), Some(1));
    assert_eq!(fake.write_count(), 0);
    let after = within("get", deployments.get("web"))
        .await
        .expect("get")
        .metadata
        .resource_version;
    assert_eq!(after, before);
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("PATCH");
    assert_eq!(patch.query_param("dryRun").as_deref(), Some("All"));
}

#[tokio::test]
async fn impersonation_headers_are_recorded() {
    let (fake, _) = fake_with_web(1).await;
    let mut config = fake.config();
    config.auth_info.impersonate = Some("alice".into());
    config.auth_info.impersonate_groups = Some(vec!["ops".into(), "oncall".into()]);
    let deployments: Api<Deployment> =
        Api::namespaced(Client::try_from(config).expect("client"), "default");
    within(
        "patch",
        deployments.patch_scale("web", &manager("k"), &merge(2)),
    )
    .await
    .expect("patch");
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("PATCH");
    assert_eq!(patch.header("Impersonate-User"), Some("alice"));
    assert_eq!(patch.header_all("impersonate-group"), ["ops", "oncall"]);
}

#[tokio::test]
async fn kubeconfig_points_a_client_at_the_fake() {
    let (fake, _) = fake_with_web(4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fake.kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: Some("fake".into()),
        ..Default::default()
    };
    let config = within(
        "config",
        kube::Config::from_custom_kubeconfig(kubeconfig, &options),
    )
    .await
    .expect("config");
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).expect("client");
    let scale = within(
        "get_scale",
        Api::<Deployment>::default_namespaced(client).get_scale("web"),
    )
    .await;
    assert_eq!(scale.ok().as_ref().and_then(replicas), Some(4));
}

#[tokio::test]
async fn lists_paginate_and_watches_replay_expire_and_time_out() {
    let (fake, deployments) = fake_with_web(1).await;
    fake.add(Kind::Deployment, "default", "api", 1);
    let first = within("list", deployments.list(&ListParams::default().limit(1)))
        .await
        .expect("list");
    assert_eq!(first.items.len(), 1);
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = within(
        "list 2",
        deployments.list(&ListParams::default().limit(1).continue_token(&token)),
    )
    .await;
    let second = second.expect("list 2");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.metadata.continue_, None);

    // From version 1 the watch replays both ADDED events, then closes with a bookmark at its timeout.
    let stream = within(
        "watch",
        deployments.watch(&WatchParams::default().timeout(1), "1"),
    )
    .await
    .expect("watch");
    let events: Vec<_> = within("watch to end", stream.try_collect::<Vec<_>>())
        .await
        .expect("events");
    assert!(matches!(
        events.as_slice(),
        [
            WatchEvent::Added(_),
            WatchEvent::Added(_),
            WatchEvent::Bookmark(_)
        ]
    ));

    fake.compact();
    let stream = within("watch", deployments.watch(&WatchParams::default(), "1"))
        .await
        .expect("watch");
    let first = within("expired", stream.boxed().try_next())
        .await
        .expect("event");
    assert!(
        matches!(first, Some(WatchEvent::Error(status)) if status.code == 410),
        "expected 410 ERROR event"
    );
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_serves_the_same_state_on_the_same_port() {
    let (fake, deployments) = fake_with_web(2).await;
    let url = fake.url();
    let config = watcher::Config::default().fields("metadata.name=web");
    let mut applied = watcher(deployments.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let initial = within("initial", applied.try_next())
        .await
        .expect("watch")
        .expect("object");
    assert_eq!(initial.spec.and_then(|s| s.replicas), Some(2));

    within("stop", fake.stop()).await;
    let refused = within("get while stopped", deployments.get_scale("web")).await;
    assert!(
        matches!(refused, Err(ref e) if !matches!(e, Error::Api(_))),
        "{refused:?}"
    );
    fake.scale_externally(Kind::Deployment, "default", "web", 6, "kubectl");

    within("restart", fake.restart()).await;
    assert_eq!(fake.url(), url);
    let scale = within("get after restart", deployments.get_scale("web"))
        .await
        .expect("get_scale");
    assert_eq!(replicas(&scale), Some(6));
    // The watcher reconnects on its own and catches up with the change made during the outage.
    let caught_up = within("watch after restart", async {
        loop {
            match applied.try_next().await {
                Ok(Some(d)) if d.spec.as_ref().and_then(|s| s.replicas) == Some(6) => return d,
                Ok(Some(_)) | Err(_) => continue,
                Ok(None) => panic!("watch stream ended"),
            }
        }
    })
    .await;
    assert_eq!(caught_up.metadata.name.as_deref(), Some("web"));
}

#[tokio::test]
async fn a_token_review_honours_the_audiences_asked_for() {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    use kube::api::PostParams;
    use kubeknobs_tests::fakeapi::API_AUDIENCE;
    let fake = FakeApiServer::start().await;
    fake.add_token("api-token", "system:serviceaccount:ops:frank", &["ops"]);
    fake.add_token_for(
        "kk-token",
        "system:serviceaccount:ops:frank",
        &["ops"],
        &["kubeknobs"],
    );
    let reviews: Api<TokenReview> = Api::all(fake.client());
    let review = |token: &str, audiences: Option<Vec<String>>| {
        let body = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences,
            },
            ..Default::default()
        };
        let reviews = reviews.clone();
        async move {
            within("review", reviews.create(&PostParams::default(), &body))
                .await
                .expect("reviewed")
                .status
                .expect("status")
        }
    };
    let kubeknobs = || Some(vec!["kubeknobs".to_owned(), "other".to_owned()]);

    let ok = review("kk-token", kubeknobs()).await;
    assert_eq!(ok.authenticated, Some(true));
    assert_eq!(
        ok.audiences,
        Some(vec!["kubeknobs".to_owned()]),
        "the intersection"
    );
    let user = ok.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:ops:frank")
    );

    // Minted for the API server: not valid for kubeknobs, and the other way round.
    let refused = review("api-token", kubeknobs()).await;
    assert_eq!(refused.authenticated, Some(false));
    assert!(refused.user.is_none());
    let error = refused.error.expect("error");
    assert!(
        error.contains("is invalid for the target audiences"),
        "{error}"
    );
    assert_eq!(review("kk-token", None).await.authenticated, Some(false));
    let own = review("api-token", None).await;
    assert_eq!(
        own.authenticated,
        Some(true),
        "no audiences: the API server's own"
    );
    assert_eq!(own.audiences, Some(vec![API_AUDIENCE.to_owned()]));
    assert_eq!(review("nope", kubeknobs()).await.authenticated, Some(false));
}

#[tokio::test]
async fn hpas_are_listed_watched_and_patched_with_their_bounds_validated() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let fake = FakeApiServer::start().await;
    fake.add_hpa("shop", "web-hpa", Kind::Deployment, "web", 2, 10);
    fake.add_hpa("other", "api-hpa", Kind::StatefulSet, "api", 1, 3);
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(fake.client(), "shop");
    let list = within("list", api.list(&ListParams::default()))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1, "only the namespace's HPAs");
    let hpa = &list.items[0];
    let spec = hpa.spec.as_ref().expect("spec");
    assert_eq!(
        (
            spec.scale_target_ref.kind.as_str(),
            spec.scale_target_ref.name.as_str()
        ),
        ("Deployment", "web")
    );
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 10));
    let all: Api<HorizontalPodAutoscaler> = Api::all(fake.client());
    let everywhere = within("list all", all.list(&ListParams::default()))
        .await
        .expect("list");
    assert_eq!(everywhere.items.len(), 2);

    let mut events = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = within("initial", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    assert_eq!(first.metadata.name.as_deref(), Some("web-hpa"));

    let patch = Patch::Merge(json!({ "spec": { "minReplicas": 4 } }));
    let patched = within("patch", api.patch("web-hpa", &manager("kubeknobs"), &patch))
        .await
        .expect("patch");
    assert_eq!(patched.spec.and_then(|s| s.min_replicas), Some(4));
    assert_eq!(fake.hpa_bounds("shop", "web-hpa"), Some((4, 10)));
    let seen = within("modified", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    assert_eq!(seen.spec.and_then(|s| s.min_replicas), Some(4));
    let owner = seen.metadata.managed_fields.unwrap_or_default();
    assert!(
        owner
            .iter()
            .any(|f| f.manager.as_deref() == Some("kubeknobs")
                && f.fields_v1
                    .as_ref()
                    .is_some_and(|v| v.0["f:spec"].get("f:minReplicas").is_some())),
        "kubeknobs owns minReplicas: {owner:?}"
    );

    // As the real API server validates an HPA: min at least 1, max at least min.
    let above = Patch::Merge(json!({ "spec": { "minReplicas": 11 } }));
    let (code, reason) = api_error(api.patch("web-hpa", &manager("kubeknobs"), &above).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    let zero = Patch::Merge(json!({ "spec": { "minReplicas": 0 } }));
    let (code, _) = api_error(api.patch("web-hpa", &manager("kubeknobs"), &zero).await);
    assert_eq!(code, 422);
    assert_eq!(
        fake.hpa_bounds("shop", "web-hpa"),
        Some((4, 10)),
        "nothing half-applied"
    );

    fake.set_hpa_status("shop", "web-hpa", 5, 6);
    let status = within("status", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    let status = status.status.expect("status");
    assert_eq!(
        (status.current_replicas, status.desired_replicas),
        (Some(5), 6)
    );

    assert!(fake.remove(Kind::HorizontalPodAutoscaler, "shop", "web-hpa"));
    let mut raw = within(
        "raw watch",
        api.watch(
            &WatchParams::default(),
            &list.metadata.resource_version.clone().unwrap_or_default(),
        ),
    )
    .await
    .expect("watch")
    .boxed();
    let mut deleted = false;
    while let Some(event) = within("deleted", raw.next()).await {
        if let WatchEvent::Deleted(h) = event.expect("event") {
            assert_eq!(h.metadata.name.as_deref(), Some("web-hpa"));
            deleted = true;
            break;
        }
    }
    assert!(deleted, "a DELETED event for the HPA");
}

#[tokio::test]
async fn labels_and_annotations_show_on_objects_and_their_changes_are_watched() {
    let (fake, api) = fake_with_web(2).await;
    let mut events = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    within("initial", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    fake.label(
        Kind::Deployment,
        "default",
        "web",
        "kustomize.toolkit.fluxcd.io/name",
        "web",
    );
    let labelled = within("labelled", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    let labels = labelled.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("web")
    );
    assert_eq!(
        labels.get("app").map(String::as_str),
        Some("web"),
        "the app label stays"
    );
    fake.annotate(
        Kind::Deployment,
        "default",
        "web",
        "argocd.argoproj.io/tracking-id",
        "shop:apps/Deployment:default/web",
    );
    let annotated = within("annotated", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    assert!(
        annotated
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("argocd.argoproj.io/tracking-id")
    );
    fake.clear_labels(Kind::Deployment, "default", "web");
    let cleared = within("cleared", events.try_next())
        .await
        .expect("watch")
        .expect("event");
    let labels = cleared.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key("kustomize.toolkit.fluxcd.io/name"),
        "{labels:?}"
    );
    assert!(cleared.metadata.annotations.unwrap_or_default().is_empty());
}
