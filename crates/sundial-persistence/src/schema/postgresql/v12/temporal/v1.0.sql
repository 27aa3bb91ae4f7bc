-- Sundial's main database on PostgreSQL, version 1.0. Table names follow Temporal's where the
-- meaning is the same; the blobs are Sundial's own, so the database is marked as Sundial's and
-- a Temporal server refuses it (its schema version check fails), as Sundial refuses Temporal's.
-- Keys are compared bytewise (COLLATE "C"), like SQLite's, so paging orders agree.

CREATE TABLE sundial_database (
    kind VARCHAR(16) PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
INSERT INTO sundial_database (kind) VALUES ('main');

CREATE TABLE cluster_metadata_info (
    metadata_partition INTEGER NOT NULL,
    cluster_name VARCHAR(255) NOT NULL,
    data BYTEA NOT NULL,
    data_encoding VARCHAR(16) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (metadata_partition, cluster_name)
);

CREATE TABLE namespaces (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    data BYTEA NOT NULL
);

CREATE TABLE shards (
    shard_id INTEGER PRIMARY KEY,
    range_id BIGINT NOT NULL
);

CREATE TABLE executions (
    namespace_id TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    shard_id INTEGER NOT NULL,
    db_record_version BIGINT NOT NULL,
    next_event_id BIGINT NOT NULL,
    state_encoding INTEGER NOT NULL,
    state BYTEA NOT NULL,
    workflow_type TEXT NOT NULL,
    task_queue TEXT NOT NULL,
    status INTEGER NOT NULL,
    start_time BIGINT NOT NULL,
    close_time BIGINT NOT NULL,
    execution_time BIGINT NOT NULL,
    memo BYTEA,
    search_attributes BYTEA,
    parent_workflow_id TEXT NOT NULL DEFAULT '',
    parent_run_id TEXT NOT NULL DEFAULT '',
    wake_time BIGINT,
    dispatch_pending BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (namespace_id, workflow_id, run_id)
);
CREATE INDEX executions_by_wake ON executions (shard_id, wake_time, namespace_id, workflow_id, run_id)
    WHERE wake_time IS NOT NULL;
CREATE INDEX executions_dispatch_pending ON executions (shard_id, namespace_id, workflow_id, run_id)
    WHERE dispatch_pending;
CREATE INDEX executions_by_start ON executions (namespace_id, start_time DESC, run_id DESC);

CREATE TABLE current_executions (
    namespace_id TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    status INTEGER NOT NULL,
    start_request_id TEXT NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
);

CREATE TABLE history_node (
    namespace_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    first_event_id BIGINT NOT NULL,
    last_event_id BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id, first_event_id)
);

CREATE TABLE transfer_tasks (
    shard_id INTEGER NOT NULL,
    task_id BIGINT NOT NULL,
    namespace_id TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (shard_id, task_id)
);
