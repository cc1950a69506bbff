//! Generates the CRIU RPC message types from `proto/rpc.proto`.
//!
//! protox parses the .proto in Rust, so no system `protoc` is needed: a plain
//! `cargo build` works on a fresh machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/rpc.proto");
    let fds = protox::compile(["proto/rpc.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
