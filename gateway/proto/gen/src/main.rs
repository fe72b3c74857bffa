//! Regenerates the gRPC code of the gateway: parses gateway/proto with
//! protox (pure Rust, no protoc) and writes the prost messages, the tonic
//! client and server, and the encoded file descriptor set (for server
//! reflection) into gateway/src/grpc/gen/.
//!
//! Run from the repository root:
//! `CARGO_TARGET_DIR=target cargo run --manifest-path gateway/proto/gen/Cargo.toml`

use std::path::Path;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto = root.join("proto");
    let out = root.join("src/grpc/gen");
    std::fs::create_dir_all(&out)?;
    let fds = protox::compile([proto.join("msa/v1/gateway.proto")], [&proto])?;
    std::fs::write(out.join("msa_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&out)
        .compile_fds(fds)?;
    println!("wrote {}", out.display());
    Ok(())
}
