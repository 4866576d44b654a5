//! Every gateway error that ends a gRPC call, mapped to its status code in one place:
//! bad credentials → `UNAUTHENTICATED`, limits → `RESOURCE_EXHAUSTED`, bad session input →
//! `INVALID_ARGUMENT`/`FAILED_PRECONDITION`/`DEADLINE_EXCEEDED`.
//!
//! Per-event refusals (forbidden, rate limited, out of range) do not end the call; they are
//! `Outcome`s with a `RejectReason` (see `service`).

use tonic::Status;

use crate::ratelimit;

impl From<ratelimit::Error> for Status {
    fn from(err: ratelimit::Error) -> Status {
        Status::resource_exhausted(err.to_string())
    }
}
