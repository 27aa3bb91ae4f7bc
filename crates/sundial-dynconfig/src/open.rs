//! Source URLs, shared by the server flag `--dynamic-config` and the operator CLI:
//! `file:///path.yaml`, `etcd://host:port[,host:port]/prefix/`,
//! `configmap://namespace/name[?key=config.yaml]`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::configmap::{ConfigMapConfig, ConfigMapSource};
use crate::etcd::{EtcdConfig, EtcdSource};
use crate::file::FileSource;
use crate::metrics::Metrics;
use crate::setting::Registry;
use crate::source::{Error, Source};

/// A parsed source URL.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceUrl {
    File(PathBuf),
    Etcd(EtcdConfig),
    ConfigMap(ConfigMapConfig),
}

/// How a source is opened: servers seed and create, the CLI does neither.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub seed_defaults: bool,
    pub create_if_missing: bool,
}

impl OpenOptions {
    /// What a server does: seed missing defaults, create a missing ConfigMap.
    pub const SERVER: OpenOptions = OpenOptions {
        seed_defaults: true,
        create_if_missing: true,
    };
    /// What an operator tool does: read and write only what it is told to.
    pub const TOOL: OpenOptions = OpenOptions {
        seed_defaults: false,
        create_if_missing: false,
    };
}

fn query(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_string(), value.to_string())
        })
        .collect()
}

impl SourceUrl {
    /// Parses a URL. Environment variables (`ETCD_*`, `TEMPORAL_K8S_NAMESPACE`,
    /// `DYNCONFIG_*`) fill the parts a URL leaves empty.
    pub fn parse(url: &str) -> Result<SourceUrl, Error> {
        Self::parse_with_env(url, |name| std::env::var(name).ok())
    }

    pub fn parse_with_env(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SourceUrl, Error> {
        let bad = |why: &str| Error::Config(format!("source url {url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").unwrap_or(("file", url));
        let (rest, query_text) = rest.split_once('?').unwrap_or((rest, ""));
        let params = query(query_text);
        match scheme {
            "file" => {
                if rest.is_empty() {
                    return Err(bad("a file path is required"));
                }
                Ok(SourceUrl::File(PathBuf::from(rest)))
            }
            "etcd" | "etcds" => {
                let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
                let mut config = EtcdConfig::new(Vec::new(), String::new());
                config.etcd_configs.clear();
                config.apply_env(&env);
                if !hosts.is_empty() {
                    let endpoints = hosts
                        .split(',')
                        .filter(|h| !h.is_empty())
                        .map(str::to_string)
                        .collect();
                    config.etcd_configs = vec![crate::etcd::EtcdCluster {
                        name: "default".into(),
                        endpoints,
                    }];
                }
                if !path.is_empty() {
                    config.global_key_prefix = format!("/{path}");
                }
                if config.global_key_prefix.is_empty() {
                    return Err(bad(
                        "a key prefix is required, for example etcd://127.0.0.1:2379/sundial/",
                    ));
                }
                if let Some(name) = params.get("clientName") {
                    config.client_name = name.clone();
                }
                let tls = scheme == "etcds" || params.contains_key("ca");
                if tls {
                    config.disable_tls = false;
                    config.client_tls_ca_cert_file = params.get("ca").cloned().unwrap_or_default();
                    config.client_tls_cert_file = params.get("cert").cloned().unwrap_or_default();
                    config.client_tls_key_file = params.get("key").cloned().unwrap_or_default();
                    config.tls_server_name = params.get("serverName").cloned().unwrap_or_default();
                } else if env("ETCD_DISABLE_TLS").is_none() {
                    config.disable_tls = true;
                }
                config.validate()?;
                Ok(SourceUrl::Etcd(config))
            }
            "configmap" => {
                let (namespace, name) = rest.split_once('/').unwrap_or((rest, ""));
                let mut config = ConfigMapConfig {
                    namespace: namespace.to_string(),
                    ..ConfigMapConfig::default()
                };
                config.apply_env(&env);
                if !name.trim_end_matches('/').is_empty() {
                    config.name = name.trim_end_matches('/').to_string();
                }
                if let Some(key) = params.get("key") {
                    config.data_key = key.clone();
                }
                if let Some(server) = params.get("server") {
                    config.cluster_url = server.clone();
                }
                Ok(SourceUrl::ConfigMap(config))
            }
            other => Err(bad(&format!(
                "unknown scheme {other:?}; use file, etcd or configmap"
            ))),
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(self, SourceUrl::File(_))
    }
}

/// Opens a source from a URL. This is what the server calls for `--dynamic-config`
/// (with [`OpenOptions::SERVER`] and its metrics) and what the CLI calls.
pub async fn open_source(
    url: &str,
    registry: Arc<Registry>,
    metrics: Metrics,
    options: OpenOptions,
) -> Result<Arc<dyn Source>, Error> {
    open_parsed(SourceUrl::parse(url)?, registry, metrics, options).await
}

pub async fn open_parsed(
    url: SourceUrl,
    registry: Arc<Registry>,
    metrics: Metrics,
    options: OpenOptions,
) -> Result<Arc<dyn Source>, Error> {
    Ok(match url {
        SourceUrl::File(path) => Arc::new(FileSource::open(path, registry, metrics).await?),
        SourceUrl::Etcd(mut config) => {
            config.seed_defaults = options.seed_defaults;
            Arc::new(EtcdSource::connect(config, registry, metrics).await?)
        }
        SourceUrl::ConfigMap(mut config) => {
            config.seed_defaults = options.seed_defaults;
            config.create_if_missing = options.create_if_missing;
            Arc::new(ConfigMapSource::connect(config, registry, metrics).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            SourceUrl::parse_with_env("file:///etc/dc.yaml", no_env).unwrap(),
            SourceUrl::File("/etc/dc.yaml".into())
        );
        assert_eq!(
            SourceUrl::parse_with_env("dc.yaml", no_env).unwrap(),
            SourceUrl::File("dc.yaml".into())
        );
    }

    #[test]
    fn etcd_urls() {
        let SourceUrl::Etcd(config) =
            SourceUrl::parse_with_env("etcd://a:1,b:2/sundial/prod/", no_env).unwrap()
        else {
            panic!("etcd");
        };
        assert_eq!(config.etcd_configs[0].endpoints, vec!["a:1", "b:2"]);
        assert_eq!(config.global_key_prefix, "/sundial/prod/");
        assert!(config.disable_tls);
        assert!(
            SourceUrl::parse_with_env("etcd://a:1", no_env).is_err(),
            "prefix required"
        );
        assert!(
            SourceUrl::parse_with_env("etcds://a:1/p/", no_env).is_err(),
            "TLS needs files"
        );
        let env = |name: &str| match name {
            "ETCD_ENDPOINTS" => Some("e:9".to_string()),
            "ETCD_KEY_PREFIX" => Some("/env/".to_string()),
            _ => None,
        };
        let SourceUrl::Etcd(config) = SourceUrl::parse_with_env("etcd://", env).unwrap() else {
            panic!("etcd")
        };
        assert_eq!(config.etcd_configs[0].endpoints, vec!["e:9"]);
        assert_eq!(config.global_key_prefix, "/env/");
    }

    #[test]
    fn configmap_urls() {
        let SourceUrl::ConfigMap(config) =
            SourceUrl::parse_with_env("configmap://temporal/dc?key=x.yaml", no_env).unwrap()
        else {
            panic!("configmap");
        };
        assert_eq!(
            (
                config.namespace.as_str(),
                config.name.as_str(),
                config.data_key.as_str()
            ),
            ("temporal", "dc", "x.yaml")
        );
        let SourceUrl::ConfigMap(config) =
            SourceUrl::parse_with_env("configmap://ns", no_env).unwrap()
        else {
            panic!("configmap");
        };
        assert_eq!(config.name, "sundial-dynamic-config");
        assert_eq!(config.data_key, "config.yaml");
        assert!(SourceUrl::parse_with_env("zk://x", no_env).is_err());
    }
}
