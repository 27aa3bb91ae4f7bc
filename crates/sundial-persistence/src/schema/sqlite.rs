//! The SQLite schema, versioned. Each migration runs once, in order, in one transaction.

pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE namespaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        data BLOB NOT NULL
    );
    CREATE TABLE shards (
        shard_id INTEGER PRIMARY KEY,
        range_id INTEGER NOT NULL
    );
    CREATE TABLE executions (
        namespace_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        shard_id INTEGER NOT NULL,
        db_version INTEGER NOT NULL,
        next_event_id INTEGER NOT NULL,
        state_encoding INTEGER NOT NULL,
        state BLOB NOT NULL,
        workflow_type TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        status INTEGER NOT NULL,
        start_time INTEGER NOT NULL,
        close_time INTEGER NOT NULL,
        execution_time INTEGER NOT NULL,
        memo BLOB,
        search_attributes BLOB,
        parent_workflow_id TEXT NOT NULL DEFAULT '',
        parent_run_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (namespace_id, workflow_id, run_id)
    );
    CREATE INDEX executions_by_shard_status ON executions (shard_id, status);
    CREATE INDEX executions_by_start ON executions (namespace_id, start_time DESC, run_id DESC);
    CREATE TABLE current_executions (
        namespace_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        status INTEGER NOT NULL,
        start_request_id TEXT NOT NULL,
        PRIMARY KEY (namespace_id, workflow_id)
    );
    CREATE TABLE history_node (
        namespace_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        first_event_id INTEGER NOT NULL,
        last_event_id INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (namespace_id, run_id, first_event_id)
    );
    CREATE TABLE transfer_tasks (
        shard_id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        namespace_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (shard_id, task_id)
    );
    CREATE TABLE cluster_metadata (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: the due-work index. Runs written before it are marked as having work pending, so
    // the next start looks at each of them once and stores their real values.
    r#"
    ALTER TABLE executions ADD COLUMN wake_time INTEGER;
    ALTER TABLE executions ADD COLUMN dispatch_pending INTEGER NOT NULL DEFAULT 0;
    UPDATE executions SET dispatch_pending = 1 WHERE status = 1;
    DROP INDEX executions_by_shard_status;
    CREATE INDEX executions_by_wake ON executions (shard_id, wake_time, namespace_id, workflow_id, run_id)
        WHERE wake_time IS NOT NULL;
    CREATE INDEX executions_dispatch_pending ON executions (shard_id, namespace_id, workflow_id, run_id)
        WHERE dispatch_pending = 1;
    "#,
    // 3: visibility's own tables (the PostgreSQL schema's version 1.1 says what they hold).
    r#"
    CREATE TABLE executions_visibility (
        namespace_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        sort_time INTEGER NOT NULL,
        workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        status INTEGER NOT NULL,
        start_time INTEGER NOT NULL,
        execution_time INTEGER NOT NULL,
        close_time INTEGER,
        execution_duration INTEGER,
        history_length INTEGER,
        history_size_bytes INTEGER,
        state_transition_count INTEGER,
        parent_workflow_id TEXT,
        parent_run_id TEXT,
        root_workflow_id TEXT NOT NULL,
        root_run_id TEXT NOT NULL,
        memo BLOB NOT NULL,
        search_attributes BLOB NOT NULL,
        PRIMARY KEY (namespace_id, run_id)
    );
    CREATE INDEX executions_visibility_by_order ON executions_visibility (namespace_id, sort_time DESC, start_time DESC, run_id);
    CREATE INDEX executions_visibility_by_workflow_id ON executions_visibility (namespace_id, workflow_id);
    CREATE INDEX executions_visibility_by_type ON executions_visibility (namespace_id, workflow_type, sort_time DESC, start_time DESC, run_id);
    CREATE INDEX executions_visibility_by_status ON executions_visibility (namespace_id, status, sort_time DESC, start_time DESC, run_id);

    CREATE TABLE executions_visibility_values (
        namespace_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        token INTEGER NOT NULL,
        value_text TEXT,
        value_int INTEGER,
        value_double REAL
    );
    CREATE INDEX executions_visibility_values_by_run ON executions_visibility_values (namespace_id, run_id);
    CREATE INDEX executions_visibility_values_by_text ON executions_visibility_values (namespace_id, name, token, value_text);
    CREATE INDEX executions_visibility_values_by_int ON executions_visibility_values (namespace_id, name, value_int);
    CREATE INDEX executions_visibility_values_by_double ON executions_visibility_values (namespace_id, name, value_double);

    INSERT INTO executions_visibility
        SELECT namespace_id, run_id,
            CASE WHEN status = 1 THEN 9223372036854775807 ELSE close_time * 1000000 END,
            workflow_id, workflow_type, task_queue, status, start_time * 1000000, execution_time * 1000000,
            CASE WHEN status = 1 THEN NULL ELSE close_time * 1000000 END,
            CASE WHEN status = 1 THEN NULL ELSE (close_time - execution_time) * 1000000 END,
            CASE WHEN status = 1 THEN NULL ELSE next_event_id - 1 END,
            NULL, NULL, NULLIF(parent_workflow_id, ''), NULLIF(parent_run_id, ''), workflow_id, run_id,
            COALESCE(memo, x''), COALESCE(search_attributes, x'')
        FROM executions;
    "#,
    // 4: list queries over a start-time window use an index, not a scan of the order index; the
    // number indexes hold only the values that are numbers (most are strings).
    r#"
    CREATE INDEX executions_visibility_by_start ON executions_visibility (namespace_id, start_time);
    DROP INDEX executions_visibility_values_by_int;
    DROP INDEX executions_visibility_values_by_double;
    CREATE INDEX executions_visibility_values_by_int ON executions_visibility_values (namespace_id, name, value_int) WHERE value_int IS NOT NULL;
    CREATE INDEX executions_visibility_values_by_double ON executions_visibility_values (namespace_id, name, value_double) WHERE value_double IS NOT NULL;
    "#,
];

/// What the query planner is told of the visibility tables' shape (`sqlite_stat1`), written at
/// every open: a large namespace where a workflow id, a run id or an attribute's value picks out
/// a handful of runs, a type or a status many. Without statistics SQLite prefers walking the
/// order index to sorting, which turns a selective filter into a scan of every run; real
/// statistics (`ANALYZE`) would need rerunning as the tables grow, and on a table where one
/// attribute name covers every row they make the planner scan for a name that no run has.
pub const VISIBILITY_PLANNER_STATS: &[(&str, &str, &str)] = &[
    (
        "executions_visibility",
        "sqlite_autoindex_executions_visibility_1",
        "1000000 1000000 1",
    ),
    (
        "executions_visibility",
        "executions_visibility_by_order",
        "1000000 1000000 1 1 1",
    ),
    (
        "executions_visibility",
        "executions_visibility_by_workflow_id",
        "1000000 1000000 2",
    ),
    (
        "executions_visibility",
        "executions_visibility_by_type",
        "1000000 1000000 20000 1 1 1",
    ),
    (
        "executions_visibility",
        "executions_visibility_by_status",
        "1000000 1000000 200000 1 1 1",
    ),
    (
        "executions_visibility",
        "executions_visibility_by_start",
        "1000000 1000000 2",
    ),
    (
        "executions_visibility_values",
        "executions_visibility_values_by_run",
        "3000000 3000000 3",
    ),
    (
        "executions_visibility_values",
        "executions_visibility_values_by_text",
        "3000000 3000000 100000 50000 10",
    ),
    (
        "executions_visibility_values",
        "executions_visibility_values_by_int",
        "3000000 3000000 100000 10",
    ),
    (
        "executions_visibility_values",
        "executions_visibility_values_by_double",
        "3000000 3000000 100000 10",
    ),
];
