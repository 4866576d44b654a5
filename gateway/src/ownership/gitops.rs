//! GitOps ownership of an object, from what Argo CD and Flux leave on it.
//!
//! In order of certainty:
//! - Argo CD's tracking annotation `argocd.argoproj.io/tracking-id` (`APP:GROUP/KIND:NS/NAME`,
//!   the default tracking method since Argo CD 3.0);
//! - Flux's labels `kustomize.toolkit.fluxcd.io/name` + `/namespace` (a Kustomization) and
//!   `helm.toolkit.fluxcd.io/name` + `/namespace` (a HelmRelease);
//! - Argo CD's tracking label `app.kubernetes.io/instance` (label tracking), except on objects
//!   labelled `app.kubernetes.io/managed-by: Helm`: plain Helm releases set that label too;
//! - a managedFields entry by one of the controllers' field managers (`argocd-controller`,
//!   `argocd-application-controller`, `kustomize-controller`, `helm-controller`), which is all
//!   server-side apply leaves when labels were stripped.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Argo CD's tracking annotation.
pub const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// Argo CD's default tracking label (shared with Helm's conventions).
pub const ARGO_INSTANCE: &str = "app.kubernetes.io/instance";
/// Flux kustomize-controller's labels.
pub const FLUX_KUSTOMIZE: (&str, &str) = (
    "kustomize.toolkit.fluxcd.io/name",
    "kustomize.toolkit.fluxcd.io/namespace",
);
/// Flux helm-controller's labels.
pub const FLUX_HELM: (&str, &str) = (
    "helm.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/namespace",
);

/// Field managers of GitOps controllers, and how to name them.
const MANAGERS: &[(&str, &str)] = &[
    (
        "argocd-controller",
        "Argo CD (field manager argocd-controller)",
    ),
    (
        "argocd-application-controller",
        "Argo CD (field manager argocd-application-controller)",
    ),
    (
        "kustomize-controller",
        "Flux (field manager kustomize-controller)",
    ),
    ("helm-controller", "Flux (field manager helm-controller)"),
];

/// The GitOps tool managing the object with `meta`, described (`Flux Kustomization apps/web`,
/// `Argo CD application shop`), or `None` when nothing says so.
pub fn gitops_of(meta: &ObjectMeta) -> Option<String> {
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if let Some(id) = annotations.get(ARGO_TRACKING_ID) {
        let app = id.split(':').next().unwrap_or(id);
        return Some(format!("Argo CD application {app}"));
    }
    for (tool, (name, namespace)) in [
        ("Kustomization", FLUX_KUSTOMIZE),
        ("HelmRelease", FLUX_HELM),
    ] {
        if let Some(name) = labels.get(name) {
            return Some(match labels.get(namespace) {
                Some(ns) => format!("Flux {tool} {ns}/{name}"),
                None => format!("Flux {tool} {name}"),
            });
        }
    }
    let helm = labels
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|m| m.eq_ignore_ascii_case("helm"));
    if let Some(app) = labels.get(ARGO_INSTANCE).filter(|_| !helm) {
        return Some(format!("Argo CD application {app}"));
    }
    let managers = meta.managed_fields.as_deref().unwrap_or_default();
    managers.iter().find_map(|entry| {
        let manager = entry.manager.as_deref()?;
        MANAGERS
            .iter()
            .find(|(m, _)| *m == manager)
            .map(|(_, described)| (*described).to_owned())
    })
}
