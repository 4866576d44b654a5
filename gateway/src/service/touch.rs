//! Touch events of a session: taking and releasing holds (see `crate::touch`).

use kubeknobs_proto::v1;

use super::Session;

impl Session {
    /// Takes or releases the hold on a target this operator may change; a touch on anything else
    /// (unknown, invisible, forbidden, held by someone else) is logged and changes nothing.
    pub(super) fn touch(&self, touch: v1::TouchEvent) {
        let view = self.shared.view();
        let target = view
            .catalog
            .get(&touch.target)
            .filter(|t| view.policy.can_see(&self.identity, &t.name));
        let Some(target) = target else {
            tracing::warn!(operator = %self.operator, target_name = %touch.target, "touch of an unknown target ignored");
            return;
        };
        let action = target.kind.action();
        if let Err(err) = view.policy.authorize(&self.identity, &target.name, action) {
            tracing::warn!(operator = %self.operator, cause = %err, "touch ignored");
            return;
        }
        match self
            .shared
            .holds
            .touch(&target.name, &self.operator, self.member.id, touch.touched)
        {
            Ok(()) => {
                tracing::debug!(operator = %self.operator, target_name = %target.name, touched = touch.touched, "touch")
            }
            Err(err) => tracing::info!(operator = %self.operator, cause = %err, "touch ignored"),
        }
    }
}
