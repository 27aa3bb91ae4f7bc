//! Versioned schemas. SQLite migrates itself when a store opens it (`sqlite`); the server
//! databases (PostgreSQL, MySQL) are set up and migrated by `sundial schema`, with
//! `temporal-sql-tool`'s commands and its `schema_version` / `schema_update_history` tables,
//! and a server refuses a database whose schema is not the one it was built for.

pub mod sqlite;

use sundial_common::{Error, Result};

use crate::options::{SqlOptions, SqlPlugin};

/// One migration of a schema set: the SQL that takes it from the previous version to this one.
#[derive(Debug)]
pub struct Migration {
    pub version: Version,
    pub description: &'static str,
    pub sql: &'static str,
}

/// A schema as `temporal-sql-tool` names it (`--schema-name postgresql/v12/temporal`).
#[derive(Debug)]
pub struct SchemaSet {
    pub name: &'static str,
    pub plugin: SqlPlugin,
    /// The kind written in the `sundial_database` mark: `main` or `visibility`.
    pub kind: &'static str,
    pub migrations: &'static [Migration],
}

/// A schema version `major.minor`, as in `schema_version.curr_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches('v');
        let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
        Some(Version(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl SchemaSet {
    /// The version this binary's server needs.
    pub fn latest(&self) -> Version {
        self.migrations
            .last()
            .map(|migration| migration.version)
            .unwrap_or(Version(0, 0))
    }

    /// The version `update-schema --version` names, the latest when none is given; an error
    /// for a version this set does not reach.
    pub fn target(&self, asked: Option<Version>) -> Result<Version> {
        let target = asked.unwrap_or_else(|| self.latest());
        if target > self.latest() {
            return Err(Error::invalid(format!(
                "schema {} has no version {target}; the latest is {}",
                self.name,
                self.latest()
            )));
        }
        Ok(target)
    }

    /// The migrations that take a database from `current` to `target`, in order.
    pub fn migrations_between(
        &self,
        current: Version,
        target: Version,
    ) -> impl Iterator<Item = &Migration> {
        self.migrations
            .iter()
            .filter(move |migration| migration.version > current && migration.version <= target)
    }
}

pub static POSTGRES_MAIN: SchemaSet = SchemaSet {
    name: "postgresql/v12/temporal",
    plugin: SqlPlugin::Postgres,
    kind: "main",
    migrations: &[
        Migration {
            version: Version(1, 0),
            description: "Sundial's initial schema: executions with the due-work index, history, transfer tasks, shards, namespaces",
            sql: include_str!("postgresql/v12/temporal/v1.0.sql"),
        },
        Migration {
            version: Version(1, 1),
            description: "visibility's own tables: a row per run and its search attributes' values",
            sql: include_str!("postgresql/v12/temporal/v1.1.sql"),
        },
    ],
};

pub static POSTGRES_VISIBILITY: SchemaSet = SchemaSet {
    name: "postgresql/v12/visibility",
    plugin: SqlPlugin::Postgres,
    kind: "visibility",
    migrations: &[Migration {
        version: Version(1, 0),
        description: "Sundial's visibility database mark",
        sql: include_str!("postgresql/v12/visibility/v1.0.sql"),
    }],
};

pub static MYSQL_MAIN: SchemaSet = SchemaSet {
    name: "mysql/v8/temporal",
    plugin: SqlPlugin::Mysql,
    kind: "main",
    migrations: &[
        Migration {
            version: Version(1, 0),
            description: "Sundial's initial schema: executions with the due-work index, history, transfer tasks, shards, namespaces",
            sql: include_str!("mysql/v8/temporal/v1.0.sql"),
        },
        Migration {
            version: Version(1, 1),
            description: "visibility's own tables: a row per run and its search attributes' values",
            sql: include_str!("mysql/v8/temporal/v1.1.sql"),
        },
    ],
};

pub static MYSQL_VISIBILITY: SchemaSet = SchemaSet {
    name: "mysql/v8/visibility",
    plugin: SqlPlugin::Mysql,
    kind: "visibility",
    migrations: &[Migration {
        version: Version(1, 0),
        description: "Sundial's visibility database mark",
        sql: include_str!("mysql/v8/visibility/v1.0.sql"),
    }],
};

pub static SETS: &[&SchemaSet] = &[
    &POSTGRES_MAIN,
    &POSTGRES_VISIBILITY,
    &MYSQL_MAIN,
    &MYSQL_VISIBILITY,
];

/// What a server makes of a database's recorded schema version (`None`: no version recorded)
/// and of Sundial's mark: `Ok` only for Sundial's schema at this binary's version, else an
/// error that says which command to run.
pub(crate) fn judge(
    set: &SchemaSet,
    options: &SqlOptions,
    current: Option<&str>,
    marked: bool,
) -> Result<()> {
    let database = &options.database;
    let latest = set.latest();
    let Some(version) = current else {
        return Err(Error::Unavailable(format!(
            "database {database} has no Sundial schema: run `{}` and then `{}`",
            options.schema_command("setup-schema -v 0.0"),
            options.schema_command(&format!("update-schema --schema-name {}", set.name)),
        )));
    };
    refuse_foreign(database, version, marked)
        .map_err(|error| Error::Unavailable(error.to_string()))?;
    let parsed = Version::parse(version).unwrap_or(Version(0, 0));
    if parsed < latest {
        Err(Error::Unavailable(format!(
            "database {database} has schema version {version}, this Sundial needs {latest}: run `{}`",
            options.schema_command(&format!("update-schema --schema-name {}", set.name)),
        )))
    } else if parsed > latest {
        Err(Error::Unavailable(format!(
            "database {database} has schema version {version}, newer than this Sundial's \
             {latest}: run a newer Sundial"
        )))
    } else {
        Ok(())
    }
}

/// A database with a schema version past 0.0 but no Sundial mark was set up for Temporal
/// Server: Sundial neither serves nor migrates it.
pub(crate) fn refuse_foreign(database: &str, version: &str, marked: bool) -> Result<()> {
    if !marked && Version::parse(version) != Some(Version(0, 0)) {
        return Err(Error::FailedPrecondition(format!(
            "database {database} holds Temporal Server's schema (version {version}), not \
             Sundial's; give Sundial a database of its own"
        )));
    }
    Ok(())
}

/// The schema set a `--schema-name` or a `--schema-dir` names. A directory is matched by its
/// last components, so Temporal's own layout (`.../schema/postgresql/v12/temporal/versioned`)
/// names the Sundial schema of the same database.
pub fn find_set(name_or_dir: &str) -> Option<&'static SchemaSet> {
    let trimmed = name_or_dir.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/versioned").unwrap_or(trimmed);
    SETS.iter()
        .copied()
        .find(|set| trimmed == set.name || trimmed.ends_with(&format!("/{}", set.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("0.0"), Some(Version(0, 0)));
        assert_eq!(Version::parse("v1.12"), Some(Version(1, 12)));
        assert_eq!(Version::parse("2"), Some(Version(2, 0)));
        assert_eq!(Version::parse("x.1"), None);
        assert!(Version(1, 9) < Version(1, 10));
    }

    #[test]
    fn update_targets_and_their_migrations() {
        let set = &POSTGRES_MAIN;
        assert_eq!(set.target(None).unwrap(), set.latest());
        let error = set.target(Some(Version(99, 0))).unwrap_err();
        assert!(error.to_string().contains("has no version 99.0"), "{error}");
        let all: Vec<_> = set
            .migrations_between(Version(0, 0), set.latest())
            .map(|migration| migration.version)
            .collect();
        assert_eq!(all, vec![Version(1, 0), Version(1, 1)]);
        let from_first: Vec<_> = set
            .migrations_between(Version(1, 0), set.latest())
            .map(|migration| migration.version)
            .collect();
        assert_eq!(from_first, vec![Version(1, 1)]);
        assert_eq!(
            set.migrations_between(set.latest(), set.latest()).count(),
            0
        );
    }

    #[test]
    fn sets_are_found_by_name_and_by_temporal_directory() {
        assert_eq!(
            find_set("postgresql/v12/temporal").unwrap().name,
            "postgresql/v12/temporal"
        );
        assert_eq!(
            find_set("/etc/temporal/schema/postgresql/v12/visibility/versioned/")
                .unwrap()
                .kind,
            "visibility"
        );
        assert!(find_set("cassandra/temporal").is_none());
        for set in SETS {
            let mut previous = Version(0, 0);
            for migration in set.migrations {
                assert!(migration.version > previous, "{} out of order", set.name);
                previous = migration.version;
            }
        }
    }
}
