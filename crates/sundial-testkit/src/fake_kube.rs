//! Fake Kubernetes API server (see the crate docs).
