//! Integration tests: the real gRPC API of an in-process server on a free port, driven by a raw
//! client that plays the worker.

// Deprecated fields are still what SDKs send.
#![allow(deprecated)]

mod common;

mod api {
    pub mod activities;
    pub mod dynconfig;
    pub mod errors;
    pub mod lifecycle;
    pub mod matching_faults;
    pub mod restart;
    pub mod search_attributes;
    pub mod shards;
    pub mod updates;
    pub mod visibility;
    pub mod workflow_tasks;
}
