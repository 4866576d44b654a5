//! The versioned gRPC contract between `kubeknobs-bridge` and `kubeknobs-gateway`.
//!
//! The `.proto` sources live in `proto/kubeknobs/v1/` and are the documentation of record for
//! every field; this crate only compiles them.

/// `kubeknobs.v1`: one bidirectional `Session` stream per bridge.
pub mod v1 {
    tonic::include_proto!("kubeknobs.v1");

    /// The protocol version this build speaks; sent in `Hello` and `Welcome`.
    pub const PROTOCOL_VERSION: u32 = 1;
}
