//! End-to-end test support for kubeknobs: harnesses that start the real programs, and the fake
//! Kubernetes API server they run against when no cluster is configured.

pub mod fakeapi;
pub mod grpc;
pub mod harness;
pub mod netns;
pub mod pipeline;
pub mod rig;
