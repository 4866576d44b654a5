//! Owners found from real object shapes, and the verdicts on moves.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn web() -> TargetSpec {
    TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "shop", 20)
}

fn hpa(name: &str, kind: &str, target: &str, labels: &[(&str, &str)]) -> HorizontalPodAutoscaler {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name, "namespace": "shop",
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": kind, "name": target },
            "minReplicas": 2, "maxReplicas": 10,
        },
        "status": { "currentReplicas": 3, "desiredReplicas": 4 },
    }))
    .expect("an HPA")
}

fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)], managers: &[&str]) -> ObjectMeta {
    serde_json::from_value(serde_json::json!({
        "name": "web",
        "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        "managedFields": managers.iter().map(|m| serde_json::json!({"manager": m, "operation": "Apply"})).collect::<Vec<_>>(),
    }))
    .expect("metadata")
}

#[test]
fn an_hpa_naming_the_object_is_its_autoscaler_and_keda_is_named_after_its_scaled_object() {
    let other = hpa("other", "Deployment", "api", &[]);
    let sts = hpa("sts", "StatefulSet", "web", &[]);
    let mine = hpa("web-hpa", "Deployment", "web", &[]);
    let found = autoscaler_of([&other, &sts, &mine], &web()).expect("web-hpa scales web");
    assert_eq!(found.describe(), "HorizontalPodAutoscaler web-hpa (2..10)");
    assert_eq!(autoscaler_of([&other, &sts], &web()), None);
    let keda = hpa(
        "keda-hpa-web",
        "Deployment",
        "web",
        &[(hpa::KEDA_SCALED_OBJECT, "web")],
    );
    let found = autoscaler_of([&keda], &web()).expect("KEDA's HPA scales web");
    assert_eq!(
        found.describe(),
        "KEDA ScaledObject web (HPA keda-hpa-web, 2..10)"
    );
    let paused = TargetSpec::for_test("web", TargetKind::DeploymentPaused, "shop", 1);
    assert_eq!(
        autoscaler_of([&mine], &paused),
        None,
        "an HPA scales replicas only"
    );
    let seen = hpa_seen(&mine);
    assert_eq!(
        (seen.min, seen.max, seen.current, seen.desired),
        (2, 10, Some(3), Some(4))
    );
}

#[test]
fn gitops_is_recognised_by_annotation_labels_and_field_managers() {
    let argo = meta(
        &[],
        &[(gitops::ARGO_TRACKING_ID, "shop:apps/Deployment:shop/web")],
        &[],
    );
    assert_eq!(
        gitops_of(&argo).as_deref(),
        Some("Argo CD application shop")
    );
    let flux = meta(
        &[
            (gitops::FLUX_KUSTOMIZE.0, "web"),
            (gitops::FLUX_KUSTOMIZE.1, "apps"),
        ],
        &[],
        &[],
    );
    assert_eq!(
        gitops_of(&flux).as_deref(),
        Some("Flux Kustomization apps/web")
    );
    let helm = meta(
        &[
            (gitops::FLUX_HELM.0, "web"),
            (gitops::FLUX_HELM.1, "flux-system"),
        ],
        &[],
        &[],
    );
    assert_eq!(
        gitops_of(&helm).as_deref(),
        Some("Flux HelmRelease flux-system/web")
    );
    let label = meta(&[(gitops::ARGO_INSTANCE, "shop")], &[], &[]);
    assert_eq!(
        gitops_of(&label).as_deref(),
        Some("Argo CD application shop")
    );
    let plain_helm = meta(
        &[
            (gitops::ARGO_INSTANCE, "shop"),
            ("app.kubernetes.io/managed-by", "Helm"),
        ],
        &[],
        &[],
    );
    assert_eq!(
        gitops_of(&plain_helm),
        None,
        "plain Helm sets the instance label too"
    );
    let managed = meta(&[], &[], &["kubectl", "kustomize-controller"]);
    assert_eq!(
        gitops_of(&managed).as_deref(),
        Some("Flux (field manager kustomize-controller)")
    );
    assert_eq!(gitops_of(&meta(&[("app", "web")], &[], &["kubectl"])), None);
}

#[test]
fn moves_are_refused_warned_or_allowed_per_the_rules() {
    let hpa = Autoscaler {
        hpa: "web-hpa".into(),
        min: 2,
        max: 10,
        keda: None,
    };
    let scaled = Owners {
        autoscaler: Some(hpa),
        gitops: None,
    };
    let Verdict::Refuse(message) = decide(&web(), &scaled) else {
        panic!("refused by default");
    };
    assert!(
        message.contains("HorizontalPodAutoscaler web-hpa (2..10)"),
        "{message}"
    );
    assert!(
        message.contains("move the HPA's bounds instead"),
        "{message}"
    );
    let allow = TargetSpec {
        ownership: Rules {
            when_autoscaled: WhenAutoscaled::Allow,
            ..Rules::default()
        },
        ..web()
    };
    assert_eq!(decide(&allow, &scaled), Verdict::Admit);

    let flux = Owners {
        autoscaler: None,
        gitops: Some("Flux Kustomization apps/web".into()),
    };
    let Verdict::Warn(warning) = decide(&web(), &flux) else {
        panic!("warned by default");
    };
    assert!(warning.contains("may revert"), "{warning}");
    let refuse = TargetSpec {
        ownership: Rules {
            when_gitops: WhenGitops::Refuse,
            ..Rules::default()
        },
        ..web()
    };
    let Verdict::Refuse(message) = decide(&refuse, &flux) else {
        panic!("refused");
    };
    assert!(message.contains("change it in Git instead"), "{message}");
    let allow = TargetSpec {
        ownership: Rules {
            when_gitops: WhenGitops::Allow,
            ..Rules::default()
        },
        ..web()
    };
    assert_eq!(decide(&allow, &flux), Verdict::Admit);
    assert_eq!(decide(&web(), &Owners::default()), Verdict::Admit);
    let both = Owners {
        gitops: flux.gitops.clone(),
        ..scaled
    };
    assert_eq!(
        both.managed_by(),
        "HorizontalPodAutoscaler web-hpa (2..10); Flux Kustomization apps/web"
    );
}

#[test]
fn an_hpa_min_is_never_above_its_max() {
    let min = TargetSpec::for_test("floor", TargetKind::HpaMinReplicas, "shop", 20);
    let max = TargetSpec::for_test("ceiling", TargetKind::HpaMaxReplicas, "shop", 20);
    assert!(check_hpa_bounds(&min, 10, Some((2, 10))).is_ok());
    let err = check_hpa_bounds(&min, 11, Some((2, 10))).unwrap_err();
    assert!(matches!(err, CrossedBounds::MinAboveMax { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "11 is above the maxReplicas 10 of horizontalpodautoscaler shop/floor: an HPA's min is never above its max (raise the max first) for target floor"
    );
    let err = check_hpa_bounds(&max, 1, Some((2, 10))).unwrap_err();
    assert!(matches!(err, CrossedBounds::MaxBelowMin { .. }), "{err}");
    assert!(err.to_string().contains("below the minReplicas 2"), "{err}");
    assert!(
        check_hpa_bounds(&max, 1, None).is_ok(),
        "unknown bounds: the API server decides"
    );
}

#[test]
fn check_explains_each_kind() {
    let rules = Rules::default();
    assert_eq!(
        rules.explain(TargetKind::DeploymentReplicas),
        "when autoscaled: refuses moves (move the HPA's bounds instead); when GitOps-managed: applies moves and warns that Argo CD/Flux may revert them"
    );
    assert!(
        !rules
            .explain(TargetKind::HpaMinReplicas)
            .contains("autoscaled")
    );
}
