//! haul's integration tests, in one binary: each module drives the built `haul` (or the
//! library) against real S3 servers on 127.0.0.1 (haul-testkit). One binary links the AWS SDK
//! once instead of once per file.

mod common;

mod account;
mod apply;
mod architecture;
mod copy;
mod examples;
mod fuzz_manifest;
mod import;
mod inventory;
mod listing_order;
mod nightly;
mod plan;
mod private_endpoints;
mod reliability;
mod s3_client;
mod scale;
mod sync;
mod sync_edges;
mod sync_model;
mod validate;
