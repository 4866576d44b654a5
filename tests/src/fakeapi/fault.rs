//! Injected faults: the next N requests matching a method and a path suffix get a chosen answer
//! instead of (or before) the normal one.
//!
//! Rules are consulted in the order they were injected; the first matching rule with uses left
//! is consumed. Method `"*"` matches any method; the suffix is matched against the path only
//! (no query), so `"/deployments/web/scale"` catches GET and PATCH of that scale, and `""`
//! catches every path.

use std::time::Duration;

/// An answer injected in place of the normal one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP code with a Kubernetes `Status` body (reason from the code:
    /// 409 Conflict, 429 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, ...).
    /// Nothing is applied.
    Status(u16),
    /// Wait this long, then handle the request normally (the change, if any, happens after the
    /// wait). Cut short with 503 if the server is stopped meanwhile.
    Delay(Duration),
}

/// One injected rule.
#[derive(Debug)]
struct Rule {
    method: String,
    path_suffix: String,
    fault: Fault,
    remaining: usize,
}

/// The pending rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Rule>,
}

impl Faults {
    /// Adds a rule for the next `times` requests matching `method` and `path_suffix`.
    pub(crate) fn push(&mut self, method: &str, path_suffix: &str, fault: Fault, times: usize) {
        if times > 0 {
            let method = method.to_ascii_uppercase();
            self.rules.push(Rule {
                method,
                path_suffix: path_suffix.to_owned(),
                fault,
                remaining: times,
            });
        }
    }

    /// Consumes one use of the first rule matching this request, if any.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self.rules.iter().position(|r| {
            (r.method == "*" || r.method.eq_ignore_ascii_case(method))
                && path.ends_with(&r.path_suffix)
        })?;
        let rule = &mut self.rules[index];
        let fault = rule.fault;
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order_and_by_count() {
        let mut faults = Faults::default();
        faults.push("patch", "/web/scale", Fault::Status(409), 2);
        faults.push("*", "", Fault::Status(500), 1);
        assert_eq!(
            faults.take("GET", "/apis/x/web/scale"),
            Some(Fault::Status(500))
        );
        assert_eq!(
            faults.take("PATCH", "/apis/x/web/scale"),
            Some(Fault::Status(409))
        );
        assert_eq!(
            faults.take("PATCH", "/apis/x/web/scale"),
            Some(Fault::Status(409))
        );
        assert_eq!(faults.take("PATCH", "/apis/x/web/scale"), None);
    }
}
