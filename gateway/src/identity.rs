//! Who an operator is, once authenticated: a name, groups, and whether the cluster vouched for
//! it. `crate::auth` finds it for each call (token, client certificate, TokenReview);
//! `crate::policy` decides with it; neither needs the other.

use std::sync::Arc;

/// The authenticated operator of a request, put into request extensions by
/// [`crate::auth::Authenticator::interceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The operator's configured name.
    pub name: Arc<str>,
    /// The groups the operator belongs to.
    pub groups: Arc<[String]>,
    /// True when the cluster vouched for it (`auth.token_review`) rather than the config or a
    /// client certificate: such an identity gets only what a policy rule names it for.
    pub reviewed: bool,
}

impl Identity {
    /// An identity named `name` in `groups`.
    pub fn new(name: &str, groups: Vec<String>) -> Identity {
        Identity {
            name: name.into(),
            groups: groups.into(),
            reviewed: false,
        }
    }

    /// An identity the cluster authenticated with a TokenReview.
    pub fn reviewed(name: &str, groups: Vec<String>) -> Identity {
        Identity {
            reviewed: true,
            ..Identity::new(name, groups)
        }
    }
}
