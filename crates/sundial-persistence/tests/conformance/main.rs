//! The store contract, one suite for every backend: each backend module below runs every test
//! of `suite` against a fresh database of its own.

mod suite;

use std::sync::Arc;

use sundial_persistence::postgres_admin;
use sundial_persistence::schema::{self, Version};
use sundial_persistence::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store};

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
        conformance!(postgres, postgres_backend(), [$($test),*]);
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

/// The PostgreSQL server of `scripts/postgres.sh` (`SUNDIAL_PG_*`). Without one the PostgreSQL
/// tests pass vacuously, unless `SUNDIAL_REQUIRE_SERVER_DBS` is set (as the test script does).
pub fn postgres_server() -> Option<PostgresOptions> {
    let Ok(host) = std::env::var("SUNDIAL_PG_HOST") else {
        assert!(
            std::env::var_os("SUNDIAL_REQUIRE_SERVER_DBS").is_none(),
            "SUNDIAL_REQUIRE_SERVER_DBS is set but SUNDIAL_PG_HOST is not"
        );
        return None;
    };
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    Some(PostgresOptions {
        host,
        port: var("SUNDIAL_PG_PORT", "5432").parse().unwrap(),
        user: var("SUNDIAL_PG_USER", "postgres"),
        password: var("SUNDIAL_PG_PASSWORD", ""),
        database: "postgres".into(),
        max_conns: 8,
        ..Default::default()
    })
}

/// A database name no other test uses.
pub fn fresh_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Postgres {
    options: PostgresOptions,
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(self.options.clone()).await.unwrap())
    }
}

/// A new database with Sundial's schema, set up the way an operator does it.
async fn postgres_backend() -> Option<Postgres> {
    let options = postgres_server()?.with_database(&fresh_name("conformance"));
    assert!(
        postgres_admin::create_database(&options, None)
            .await
            .unwrap()
    );
    postgres_admin::setup_schema(&options, Version(0, 0))
        .await
        .unwrap();
    postgres_admin::update_schema(&options, &schema::POSTGRES_MAIN, None)
        .await
        .unwrap();
    Some(Postgres { options })
}

mod postgres_schema {
    use super::*;

    #[tokio::test]
    async fn setup_and_update_twice_change_nothing_and_servers_refuse_other_versions() {
        let Some(server) = postgres_server() else {
            return;
        };
        let options = server.with_database(&fresh_name("schema"));
        // No database yet.
        let error = PostgresStore::open(options.clone()).await.err().unwrap();
        assert!(error.to_string().contains("cannot connect"), "{error}");
        assert!(
            postgres_admin::create_database(&options, None)
                .await
                .unwrap()
        );
        assert!(
            !postgres_admin::create_database(&options, None)
                .await
                .unwrap()
        );
        // An empty database: the server says what to run.
        let error = PostgresStore::open(options.clone()).await.err().unwrap();
        assert!(error.to_string().contains("setup-schema -v 0.0"), "{error}");
        assert_eq!(
            postgres_admin::setup_schema(&options, Version(0, 0))
                .await
                .unwrap(),
            Version(0, 0)
        );
        assert_eq!(
            postgres_admin::setup_schema(&options, Version(0, 0))
                .await
                .unwrap(),
            Version(0, 0)
        );
        // Set up but not updated: refused, naming the update command.
        let error = PostgresStore::open(options.clone()).await.err().unwrap();
        assert!(
            error
                .to_string()
                .contains("update-schema --schema-name postgresql/v12/temporal"),
            "{error}"
        );
        let applied = postgres_admin::update_schema(&options, &schema::POSTGRES_MAIN, None)
            .await
            .unwrap();
        assert_eq!(applied, vec![schema::POSTGRES_MAIN.latest()]);
        let again = postgres_admin::update_schema(&options, &schema::POSTGRES_MAIN, None)
            .await
            .unwrap();
        assert!(again.is_empty());
        let store = PostgresStore::open(options.clone()).await.unwrap();
        store.acquire_shard(1).await.unwrap();
        store.close();
    }

    #[tokio::test]
    async fn a_temporal_database_is_refused_both_ways() {
        let Some(server) = postgres_server() else {
            return;
        };
        let options = server.with_database(&fresh_name("temporal"));
        postgres_admin::create_database(&options, None)
            .await
            .unwrap();
        postgres_admin::setup_schema(&options, Version(0, 0))
            .await
            .unwrap();
        // What Temporal's tool leaves: a version of Temporal's, no Sundial mark.
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host={} port={} user={} password={} dbname={}",
                options.host, options.port, options.user, options.password, options.database
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("UPDATE schema_version SET curr_version = '1.19'")
            .await
            .unwrap();
        let error = PostgresStore::open(options.clone()).await.err().unwrap();
        assert!(
            error.to_string().contains("Temporal Server's schema"),
            "{error}"
        );
        let error = postgres_admin::update_schema(&options, &schema::POSTGRES_MAIN, None)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("Temporal Server's schema"),
            "{error}"
        );
    }
}
