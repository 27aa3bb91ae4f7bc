//! The fake API server, driven by the real `kube` client.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sundial_testkit::fake_kube::{FakeKube, MAX_DATA_BYTES};

fn api(fake: &FakeKube) -> Api<ConfigMap> {
    let client = Client::try_from(kube::Config::new(fake.url().parse().unwrap())).unwrap();
    Api::namespaced(client, "ns")
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), value.to_string())])),
        ..ConfigMap::default()
    }
}

fn code(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn crud_preconditions_and_limits() {
    let fake = FakeKube::start().await;
    let api = api(&fake);
    assert!(api.get_opt("a").await.unwrap().is_none());
    let created = api
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        code(
            api.create(&PostParams::default(), &config_map("a", "1"))
                .await
                .unwrap_err()
        ),
        409
    );

    // PUT with a stale resourceVersion conflicts; with the current one it succeeds.
    let mut stale = created.clone();
    stale.metadata.resource_version = Some("1".into());
    assert_eq!(
        code(
            api.replace("a", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        409
    );
    let mut fresh = created.clone();
    fresh.data = Some(BTreeMap::from([("k".to_string(), "2".to_string())]));
    let replaced = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(replaced.metadata.resource_version.unwrap(), rv);

    // Merge patch: null removes a key.
    let patch = json!({"data": {"k": null, "j": "3"}});
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        BTreeMap::from([("j".to_string(), "3".to_string())])
    );

    // The 1 MiB limit.
    let huge = config_map("b", &"x".repeat(MAX_DATA_BYTES + 1));
    assert_eq!(
        code(api.create(&PostParams::default(), &huge).await.unwrap_err()),
        422
    );

    // 403 and injected failures.
    fake.set_forbidden(true);
    assert_eq!(code(api.get("a").await.unwrap_err()), 403);
    fake.set_forbidden(false);
    fake.fail_next(1, 500, None);
    assert_eq!(code(api.get("a").await.unwrap_err()), 500);
    assert!(api.get("a").await.is_ok());
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("PATCH /api/v1/namespaces/ns/configmaps/a"))
    );
}
