//! End-to-end test support for kubeknobs: harnesses that start the real programs, the fake
//! Kubernetes API server they run against when no cluster is configured, and a reader of what a
//! running program costs (`footprint`).

pub mod browser;
pub mod fakeapi;
pub mod footprint;
pub mod grpc;
pub mod harness;
pub mod knob;
pub mod netns;
pub mod pipeline;
pub mod rig;
