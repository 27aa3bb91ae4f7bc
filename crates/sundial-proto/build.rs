//! Generates only the server-side service traits of Temporal's public API. Message types are
//! not generated here: every `.temporal`, `.google` and `.grpc` path points at the types that the
//! `temporalio-protos` crate already compiled, read from the descriptor set it exports.

use std::{env, fs};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptor_path = env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not export its descriptor set")?;
    println!("cargo:rerun-if-changed={descriptor_path}");
    let bytes = fs::read(&descriptor_path)?;
    let mut descriptor_set = prost_types_build::FileDescriptorSet::decode(bytes.as_slice())?;
    // Keep only the files that declare the services we serve; the rest are reached by extern paths.
    let wanted = [
        "temporal/api/workflowservice/v1/service.proto",
        "temporal/api/operatorservice/v1/service.proto",
        "health/v1/health.proto",
    ];
    descriptor_set
        .file
        .retain(|file| wanted.iter().any(|name| file.name().ends_with(name)));
    if descriptor_set.file.len() != wanted.len() {
        return Err("service descriptors missing from the temporalio-protos descriptor set".into());
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .extern_path(
            ".temporal.api",
            "::temporalio_protos::protos::temporal::api",
        )
        .extern_path(
            ".grpc.health.v1",
            "::temporalio_protos::protos::grpc::health::v1",
        )
        .compile_fds(descriptor_set)?;
    Ok(())
}
