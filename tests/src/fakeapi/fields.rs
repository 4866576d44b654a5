//! `metadata.managedFields`, reduced to the three field groups the fake models (spec.replicas,
//! status, and everything set at creation), and the ownership rule server-side field management
//! applies when a manager writes a group: it becomes the group's only owner.
//!
//! As on a real API server (seen on v1.28), an entry written through the `scale` subresource
//! carries no `time`: who changed replicas is told by who *owns* `f:spec.f:replicas`, never by
//! the newest timestamp (which names whoever touched the object otherwise, e.g. its creator).

/// One `metadata.managedFields` entry, reduced to the field groups the fake models.
#[derive(Clone, Debug)]
pub(crate) struct ManagedField {
    pub(crate) manager: String,
    /// `Update` or `Apply`.
    pub(crate) operation: &'static str,
    /// `Some("scale")`, `Some("status")` or `None` for the main resource.
    pub(crate) subresource: Option<&'static str>,
    /// When the entry last changed; `None` for writes through the `scale` subresource.
    pub(crate) time: Option<String>,
    /// Owns `spec.replicas`.
    pub(crate) replicas: bool,
    /// Owns `status.replicas`/`status.readyReplicas`.
    pub(crate) status: bool,
    /// Owns the rest of the object (labels, selector, template) set at creation.
    pub(crate) rest: bool,
}

/// Who writes replicas, and how: the field manager and the operation recorded in managedFields.
pub(crate) struct Writer<'a> {
    pub(crate) manager: &'a str,
    pub(crate) operation: &'static str,
    pub(crate) subresource: Option<&'static str>,
}

/// Gives `writer` ownership of the field group `owns` picks, taking it from every other manager
/// (and dropping managers left owning nothing), as server-side field management does.
pub(crate) fn take_ownership(
    fields: &mut Vec<ManagedField>,
    writer: &Writer<'_>,
    owns: fn(&mut ManagedField) -> &mut bool,
) {
    let is_writer = |f: &ManagedField| {
        f.manager == writer.manager
            && f.operation == writer.operation
            && f.subresource == writer.subresource
    };
    for field in fields.iter_mut().filter(|f| !is_writer(f)) {
        *owns(field) = false;
    }
    fields.retain(|f| f.replicas || f.status || f.rest || is_writer(f));
    // The real server records no time for an Update through the scale subresource.
    let time = (writer.subresource != Some("scale")).then(now);
    match fields.iter_mut().find(|f| is_writer(f)) {
        Some(entry) => {
            entry.time = time;
            *owns(entry) = true;
        }
        None => {
            let mut entry = ManagedField {
                manager: writer.manager.to_owned(),
                operation: writer.operation,
                subresource: writer.subresource,
                time,
                replicas: false,
                status: false,
                rest: false,
            };
            *owns(&mut entry) = true;
            fields.push(entry);
        }
    }
}

/// The current time as Kubernetes writes it (RFC 3339, seconds, UTC).
pub(crate) fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", now).unwrap_or_default()
}
