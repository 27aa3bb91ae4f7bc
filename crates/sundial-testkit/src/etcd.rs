//! A real etcd server for tests: started on free loopback ports in a temporary data
//! directory, stopped by PID (kill, restart on the same ports and data).
//!
//! The binary comes from `SUNDIAL_ETCD_BIN`, `etcd` on `PATH`, or the venv that
//! `scripts/install-etcd.sh` creates. Without one, starting panics with a hint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdServer {
    binary: PathBuf,
    data_dir: tempfile_dir::TempDir,
    client_port: u16,
    peer_port: u16,
    /// Directory with ca.crt, server.crt/key and client.crt/key when serving mutual TLS.
    tls: Option<PathBuf>,
    child: Option<Child>,
}

/// Finds an etcd binary, or explains how to install one.
pub fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SUNDIAL_ETCD_BIN") {
        return PathBuf::from(path);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let venv = Path::new(&home).join(".cache/sundial/etcd-venv");
        if let Some(found) = find_file(&venv, "etcd", 6) {
            return found;
        }
    }
    panic!("no etcd binary found: run scripts/install-etcd.sh or set SUNDIAL_ETCD_BIN");
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    if depth == 0 {
        return None;
    }
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name, depth - 1) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

impl EtcdServer {
    /// Starts etcd and waits until it answers on its client port.
    pub fn start() -> EtcdServer {
        Self::start_with_tls(None)
    }

    /// Starts etcd requiring client certificates, with the files in `cert_dir` (as made by
    /// `deploy/etcd/gen-certs.sh`).
    pub fn start_with_tls(cert_dir: Option<PathBuf>) -> EtcdServer {
        let mut server = EtcdServer {
            binary: etcd_binary(),
            data_dir: tempfile_dir::TempDir::new(),
            client_port: crate::free_port(),
            peer_port: crate::free_port(),
            tls: cert_dir,
            child: None,
        };
        server.spawn();
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.endpoint())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let client = self.client_url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log =
            std::fs::File::create(self.data_dir.path().join("etcd.log")).expect("create etcd log");
        let mut command = Command::new(&self.binary);
        if let Some(certs) = &self.tls {
            command
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(certs.join("ca.crt"))
                .arg("--cert-file")
                .arg(certs.join("server.crt"))
                .arg("--key-file")
                .arg(certs.join("server.key"));
        }
        let child = command
            .arg("--name")
            .arg("t")
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("t={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = format!("127.0.0.1:{}", self.client_port);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.data_dir.path().join("etcd.log"))
                    .unwrap_or_default();
                panic!("etcd exited early with {status}:\n{log}");
            }
            let ready = std::net::TcpStream::connect(&health).is_ok()
                && (self.tls.is_some() || self.http_health());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become ready on {health}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET /health over plain HTTP; true once etcd reports healthy.
    fn http_health(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(self.endpoint()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /health HTTP/1.0\r\nHost: {}\r\n\r\n", self.endpoint());
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Kills the process (SIGKILL by PID) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `etcdctl` (next to the etcd binary, or on PATH) against this server.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let sibling = self.binary.with_file_name("etcdctl");
        let program = if sibling.is_file() {
            sibling
        } else {
            PathBuf::from("etcdctl")
        };
        let mut command = Command::new(&program);
        if let Some(certs) = &self.tls {
            command
                .arg("--cacert")
                .arg(certs.join("ca.crt"))
                .arg("--cert")
                .arg(certs.join("client.crt"))
                .arg("--key")
                .arg(certs.join("client.key"));
        }
        let output = command
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.client_url())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal temporary directory (removed on drop), to keep this crate's dependencies small.
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let name = format!(
                "sundial-etcd-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&path).expect("create temporary directory");
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
