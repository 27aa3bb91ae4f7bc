//! The store contract, one suite for every backend: each backend module below runs every test
//! of `suite` against a fresh database of its own.

mod suite;

use std::sync::Arc;

use sundial_persistence::schema::Version;
use sundial_persistence::{
    SqlOptions, SqlPlugin, SqliteOptions, SqliteStore, Store, admin, open_server_store,
};
use sundial_testkit::databases;

/// A database under test, empty when made. `open` can be called again after `Store::close` to
/// read what the previous store left (durability).
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    async fn open(&self) -> Arc<dyn Store>;
}

/// Generates one `#[tokio::test]` per suite test, for the backend `$make` gives (an async
/// expression of type `Option<impl Backend>`; `None` when that backend is not configured here).
macro_rules! conformance {
    ($module:ident, $make:expr, [$($test:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(backend) = $make.await else { return };
                    suite::$test(&backend).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        conformance!(sqlite, sqlite_backend(), [$($test),*]);
        conformance!(postgres, server_backend(SqlPlugin::Postgres), [$($test),*]);
        conformance!(mysql, server_backend(SqlPlugin::Mysql), [$($test),*]);
    };
}

all_backends!(
    create_load_append_and_read_history,
    a_stale_shard_owner_cannot_write,
    current_run_pointer_is_compared_and_swapped,
    concurrent_writes_are_group_committed_and_all_durable,
    namespaces_are_unique,
    failing_batches_in_a_group_leave_nothing_and_spare_the_others,
    dispatch_pending_runs_are_listed_in_pages,
    wakeups_are_found_by_time_window_in_pages,
    due_work_and_visibility_fields_round_trip,
    the_shard_count_is_fixed_at_the_first_start,
    ids_are_compared_bytewise,
    list_queries_filter_order_page_and_count,
);

pub struct Sqlite {
    dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(SqliteOptions {
                path: self.dir.path().join("test.db"),
                durable: true,
            })
            .unwrap(),
        )
    }
}

async fn sqlite_backend() -> Option<Sqlite> {
    Some(Sqlite {
        dir: tempfile::tempdir().unwrap(),
    })
}

/// A fresh database on the server the test scripts started for a dialect.
pub struct ServerDb {
    options: SqlOptions,
}

#[async_trait::async_trait]
impl Backend for ServerDb {
    async fn open(&self) -> Arc<dyn Store> {
        open_server_store(self.options.clone()).await.unwrap()
    }
}

async fn server_backend(plugin: SqlPlugin) -> Option<ServerDb> {
    let server = databases::server(plugin)?;
    Some(ServerDb {
        options: databases::fresh_database(&server, "conformance").await,
    })
}

/// What `sundial schema` and a starting server do with a database, on each server dialect.
mod server_schema {
    use super::*;

    async fn setup_and_update_twice_change_nothing_and_servers_refuse_other_versions(
        plugin: SqlPlugin,
    ) {
        let Some(server) = databases::server(plugin) else {
            return;
        };
        let (main, _) = plugin.schemas();
        let options = server.with_database(&databases::fresh_name("schema"));
        // No database yet.
        let error = open_server_store(options.clone()).await.err().unwrap();
        assert!(error.to_string().contains("cannot connect"), "{error}");
        assert!(admin::create_database(&options, None).await.unwrap());
        assert!(!admin::create_database(&options, None).await.unwrap());
        // An empty database: the server says what to run.
        let error = open_server_store(options.clone()).await.err().unwrap();
        assert!(error.to_string().contains("setup-schema -v 0.0"), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("--plugin {}", plugin.name())),
            "{error}"
        );
        for _ in 0..2 {
            assert_eq!(
                admin::setup_schema(&options, Version(0, 0)).await.unwrap(),
                Version(0, 0)
            );
        }
        // Set up but not updated: refused, naming the update command.
        let error = open_server_store(options.clone()).await.err().unwrap();
        assert!(
            error
                .to_string()
                .contains(&format!("update-schema --schema-name {}", main.name)),
            "{error}"
        );
        let applied = admin::update_schema(&options, main, None).await.unwrap();
        let every: Vec<Version> = main.migrations.iter().map(|m| m.version).collect();
        assert_eq!(applied, every);
        assert_eq!(applied.last(), Some(&main.latest()));
        let again = admin::update_schema(&options, main, None).await.unwrap();
        assert!(again.is_empty());
        let store = open_server_store(options.clone()).await.unwrap();
        assert_eq!(store.acquire_shard(1).await.unwrap(), 1);
        assert_eq!(store.acquire_shard(1).await.unwrap(), 2);
        store.close();
        admin::check_database(&options, main).await.unwrap();
        admin::drop_database(&options, None).await.unwrap();
        let error = open_server_store(options.clone()).await.err().unwrap();
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }

    async fn a_temporal_database_is_refused_both_ways(plugin: SqlPlugin) {
        let Some(server) = databases::server(plugin) else {
            return;
        };
        let (main, _) = plugin.schemas();
        let options = server.with_database(&databases::fresh_name("temporal"));
        admin::create_database(&options, None).await.unwrap();
        // What Temporal's tool leaves: a version of Temporal's, no Sundial mark.
        admin::setup_schema(&options, Version(1, 19)).await.unwrap();
        let error = open_server_store(options.clone()).await.err().unwrap();
        assert!(
            error.to_string().contains("Temporal Server's schema"),
            "{error}"
        );
        let error = admin::update_schema(&options, main, None)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("Temporal Server's schema"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn postgres_setup_and_update_twice_change_nothing_and_servers_refuse_other_versions() {
        setup_and_update_twice_change_nothing_and_servers_refuse_other_versions(
            SqlPlugin::Postgres,
        )
        .await;
    }

    #[tokio::test]
    async fn mysql_setup_and_update_twice_change_nothing_and_servers_refuse_other_versions() {
        setup_and_update_twice_change_nothing_and_servers_refuse_other_versions(SqlPlugin::Mysql)
            .await;
    }

    #[tokio::test]
    async fn postgres_a_temporal_database_is_refused_both_ways() {
        a_temporal_database_is_refused_both_ways(SqlPlugin::Postgres).await;
    }

    #[tokio::test]
    async fn mysql_a_temporal_database_is_refused_both_ways() {
        a_temporal_database_is_refused_both_ways(SqlPlugin::Mysql).await;
    }
}
