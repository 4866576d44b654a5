//! Compiles `kubeknobs/v1/*.proto` with protox, a pure-Rust protobuf compiler,
//! so building the workspace needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["kubeknobs/v1/session.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
