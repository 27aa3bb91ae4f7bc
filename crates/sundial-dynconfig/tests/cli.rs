//! The operator CLI, driven through `run_with_output` against a file, etcd and a ConfigMap.

use std::time::Duration;

use clap::Parser;
use sundial_dynconfig::cli::{DynconfigArgs, run_with_output};
use sundial_testkit::etcd::EtcdServer;
use sundial_testkit::fake_kube::FakeKube;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: DynconfigArgs,
}

/// Runs one command; an error counts as exit code 1, like the server binary maps it.
async fn cli(args: &[&str]) -> (i32, String) {
    let parsed = Cli::try_parse_from(std::iter::once("dynconfig").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("parse {args:?}: {e}"));
    let mut out = Vec::new();
    let code = match run_with_output(parsed.args, &mut out).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error:#}");
            1
        }
    };
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn file_get_set_delete_explain_dump_validate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dc.yaml");
    let url = format!("file://{}", path.display());
    let url = url.as_str();

    assert_eq!(
        cli(&["--source", url, "get", "frontend.rps"]).await.0,
        1,
        "absent key"
    );
    assert_eq!(
        cli(&["--source", url, "set", "frontend.rps", "100"])
            .await
            .0,
        0
    );
    assert_eq!(
        cli(&[
            "--source",
            url,
            "set",
            "frontend.namespaceRPS",
            "5",
            "--namespace",
            "a"
        ])
        .await
        .0,
        0
    );
    assert_eq!(
        cli(&["--source", url, "set", "frontend.namespaceRPS", "7"])
            .await
            .0,
        0
    );
    let (code, out) = cli(&["--source", url, "get", "frontend.rps"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("value: 100"), "{out}");
    let (code, out) = cli(&[
        "--source",
        url,
        "get",
        "frontend.namespaceRPS",
        "--namespace",
        "a",
    ])
    .await;
    assert_eq!((code, out.trim()), (0, "5"));
    assert_eq!(
        cli(&[
            "--source",
            url,
            "get",
            "frontend.namespaceRPS",
            "--namespace",
            "b"
        ])
        .await
        .0,
        1
    );

    // A value of the wrong type or an unknown key is refused.
    assert_eq!(
        cli(&["--source", url, "set", "frontend.rps", "fast"])
            .await
            .0,
        1
    );
    assert_eq!(
        cli(&["--source", url, "set", "no.such.key", "1"]).await.0,
        1
    );
    assert_eq!(
        cli(&[
            "--source",
            url,
            "set",
            "frontend.rps",
            "1",
            "--namespace",
            "a"
        ])
        .await
        .0,
        1,
        "global setting"
    );

    let (code, out) = cli(&[
        "--source",
        url,
        "explain",
        "frontend.namespaceRPS",
        "--namespace",
        "a",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("result: 5"), "{out}");
    assert!(out.contains("entry #0"), "{out}");
    let (_, out) = cli(&[
        "--source",
        url,
        "explain",
        "frontend.namespaceRPS",
        "--namespace",
        "z",
    ])
    .await;
    assert!(out.contains("result: 7"), "{out}");
    let (_, out) = cli(&[
        "--source",
        url,
        "explain",
        "matching.numTaskqueueReadPartitions",
        "--task-queue",
        "temporal-sys-per-ns-tq",
    ])
    .await;
    assert!(
        out.contains("result: 1") && out.contains("constrained default"),
        "{out}"
    );

    assert_eq!(
        cli(&[
            "--source",
            url,
            "delete",
            "frontend.namespaceRPS",
            "--namespace",
            "a"
        ])
        .await
        .0,
        0
    );
    let (_, out) = cli(&["--source", url, "get", "frontend.namespaceRPS"]).await;
    assert!(
        !out.contains("namespace: a") && out.contains("value: 7"),
        "{out}"
    );
    assert_eq!(
        cli(&["--source", url, "delete", "frontend.namespaceRPS"])
            .await
            .0,
        0
    );
    assert_eq!(
        cli(&["--source", url, "get", "frontend.namespaceRPS"])
            .await
            .0,
        1
    );

    let (_, yaml) = cli(&["--source", url, "dump"]).await;
    assert_eq!(yaml, std::fs::read_to_string(&path).unwrap());
    let (_, json) = cli(&["--source", url, "dump", "--format", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["keys"]["frontend.rps"][0]["value"], 100);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "frontend.rps: [{value: 1, constraints: {color: blue}}]\n",
    )
    .unwrap();
    let (code, out) = cli(&["validate", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(out.contains("error:") && out.contains("color"), "{out}");
    let warn = dir.path().join("warn.yaml");
    std::fs::write(
        &warn,
        "frontend.rps: [{value: fast}]\nmystery.key: [{value: 1}]\n",
    )
    .unwrap();
    let (code, out) = cli(&["validate", warn.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    assert_eq!(out.matches("warning:").count(), 2, "{out}");
    assert_eq!(
        cli(&["validate", "--strict", warn.to_str().unwrap()])
            .await
            .0,
        1
    );

    // set --file replaces each key's list.
    let doc = dir.path().join("doc.yaml");
    std::fs::write(
        &doc,
        "frontend.globalRPS: [{value: 9}]\nfrontend.rps: [{value: 200}]\n",
    )
    .unwrap();
    assert_eq!(
        cli(&["--source", url, "set", "--file", doc.to_str().unwrap()])
            .await
            .0,
        0
    );
    let (_, out) = cli(&["--source", url, "get", "frontend.rps"]).await;
    assert!(out.contains("value: 200"), "{out}");
}

#[tokio::test]
async fn diff_and_sync_between_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        "frontend.rps: [{value: 1}]\nfrontend.globalRPS: [{value: 2}]\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "frontend.rps: [{value: 3}]\nlimit.blobSize.warn: [{value: 4}]\n",
    )
    .unwrap();
    let (a_url, b_url) = (
        format!("file://{}", a.display()),
        format!("file://{}", b.display()),
    );
    let (code, out) = cli(&["--source", &a_url, "diff", &b_url]).await;
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(
        cli(&["--source", &a_url, "sync", "--to", &b_url]).await.0,
        0
    );
    assert_eq!(
        cli(&["--source", &a_url, "diff", &b_url]).await,
        (0, String::new())
    );
}

#[tokio::test]
async fn etcd_set_get_watch_and_sync_prefixes() {
    let server = EtcdServer::start();
    let prod = format!("etcd://{}/sundial/prod/", server.endpoint());
    let stage = format!("etcd://{}/sundial/stage/", server.endpoint());
    assert_eq!(
        cli(&[
            "--source",
            &prod,
            "set",
            "frontend.namespaceRPS",
            "500",
            "--namespace",
            "busy"
        ])
        .await
        .0,
        0
    );
    let stored = server.etcdctl(&[
        "get",
        "/sundial/prod/frontend.namespaceRPS",
        "--print-value-only",
    ]);
    assert!(stored.contains("namespace: busy"), "{stored}");
    let (code, out) = cli(&[
        "--source",
        &prod,
        "get",
        "frontend.namespacerps",
        "--namespace",
        "busy",
    ])
    .await;
    assert_eq!((code, out.trim()), (0, "500"));
    // The CLI never seeds defaults.
    assert!(
        server
            .etcdctl(&["get", "/sundial/prod/frontend.rps"])
            .is_empty()
    );

    // watch prints the next change.
    let watcher = tokio::spawn({
        let prod = prod.clone();
        async move {
            cli(&[
                "--source",
                &prod,
                "watch",
                "--count",
                "1",
                "--timeout",
                "20s",
            ])
            .await
        }
    });
    // The watcher is ready once its source is open; keep writing until it has seen one.
    let mut value = 600;
    while !watcher.is_finished() {
        server.etcdctl(&[
            "put",
            "--",
            "/sundial/prod/frontend.rps",
            &format!("- value: {value}"),
        ]);
        value += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out) = watcher.await.unwrap();
    assert_eq!(code, 0);
    assert!(out.starts_with("set frontend.rps [6"), "{out}");

    server.etcdctl(&[
        "put",
        "--",
        "/sundial/stage/limit.blobSize.warn",
        "- value: 1",
    ]);
    assert_eq!(cli(&["--source", &prod, "sync", "--to", &stage]).await.0, 0);
    assert_eq!(cli(&["--source", &prod, "diff", &stage]).await.0, 0);
    assert!(
        server
            .etcdctl(&["get", "/sundial/stage/limit.blobSize.warn"])
            .is_empty(),
        "extra key deleted"
    );

    // No etcd → nonzero exit.
    drop(server);
    let down = format!("etcd://127.0.0.1:{}/p/", sundial_testkit::free_port());
    assert_eq!(cli(&["--source", &down, "dump"]).await.0, 1);
}

#[tokio::test]
async fn configmap_set_and_get() {
    let fake = FakeKube::start().await;
    let url = format!("configmap://temporal/dc?server={}", fake.url());
    assert_eq!(
        cli(&["--source", &url, "dump"]).await.0,
        1,
        "the CLI does not create a ConfigMap"
    );
    fake.set_data(
        "temporal",
        "dc",
        "config.yaml",
        "# comment\nfrontend.rps: [{value: 1}]\n",
    );
    assert_eq!(
        cli(&["--source", &url, "set", "frontend.rps", "42"])
            .await
            .0,
        0
    );
    let text = fake.data("temporal", "dc", "config.yaml").unwrap();
    assert!(text.contains("value: 42"), "{text}");
    let (code, out) = cli(&["--source", &url, "get", "frontend.rps"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("value: 42"), "{out}");
}
