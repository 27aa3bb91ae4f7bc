//! Dev-only test helpers for Sundial: bounded polling (`eventually`) and an in-process fake
//! Kubernetes API server (`fake_kube`) that the real `kube` client talks to over HTTP, and the
//! throwaway server databases of the test scripts (`databases`).
//!
//! Nothing here is used by production code.

pub mod databases;
pub mod etcd;
pub mod fake_kube;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`eventually`] for a plain condition.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    eventually(timeout, what, || {
        let ok = condition();
        async move { ok.then_some(()) }
    })
    .await
}

/// A free loopback TCP port (bound, then released). Ports handed out by one process are
/// never repeated, so two calls in a row cannot collide.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("bind a loopback port");
        let mut given = GIVEN.lock().expect("port list lock");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
