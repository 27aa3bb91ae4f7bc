-- Sundial's main database on MySQL 8 (tested on MariaDB 10.11), version 1.0: the same tables
-- as on PostgreSQL. Keys and names are VARBINARY, compared bytewise like SQLite's and
-- PostgreSQL's "C" collation, so paging orders agree and workflow ids are case-sensitive;
-- a workflow id may be 1,000 bytes, Temporal's default `limit.maxIDLength`. MySQL has no
-- partial indexes, so the due-work indexes cover every row and the queries bound them.

CREATE TABLE sundial_database (
    kind VARCHAR(16) NOT NULL PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE = InnoDB;
INSERT INTO sundial_database (kind) VALUES ('main');

CREATE TABLE cluster_metadata_info (
    metadata_partition INT NOT NULL,
    cluster_name VARCHAR(255) NOT NULL,
    data MEDIUMBLOB NOT NULL,
    data_encoding VARCHAR(16) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (metadata_partition, cluster_name)
) ENGINE = InnoDB;

CREATE TABLE namespaces (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    name VARBINARY(1000) NOT NULL,
    data MEDIUMBLOB NOT NULL,
    UNIQUE KEY namespaces_by_name (name)
) ENGINE = InnoDB;

CREATE TABLE shards (
    shard_id INT NOT NULL PRIMARY KEY,
    range_id BIGINT NOT NULL
) ENGINE = InnoDB;

CREATE TABLE executions (
    namespace_id VARBINARY(255) NOT NULL,
    workflow_id VARBINARY(1000) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    shard_id INT NOT NULL,
    db_record_version BIGINT NOT NULL,
    next_event_id BIGINT NOT NULL,
    state_encoding INT NOT NULL,
    state LONGBLOB NOT NULL,
    workflow_type BLOB NOT NULL,
    task_queue BLOB NOT NULL,
    status INT NOT NULL,
    start_time BIGINT NOT NULL,
    close_time BIGINT NOT NULL,
    execution_time BIGINT NOT NULL,
    memo MEDIUMBLOB,
    search_attributes MEDIUMBLOB,
    parent_workflow_id VARBINARY(1000) NOT NULL DEFAULT '',
    parent_run_id VARBINARY(255) NOT NULL DEFAULT '',
    wake_time BIGINT,
    dispatch_pending BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (namespace_id, workflow_id, run_id),
    KEY executions_by_wake (shard_id, wake_time),
    KEY executions_dispatch_pending (shard_id, dispatch_pending),
    KEY executions_by_start (namespace_id, start_time, run_id)
) ENGINE = InnoDB;

CREATE TABLE current_executions (
    namespace_id VARBINARY(255) NOT NULL,
    workflow_id VARBINARY(1000) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    status INT NOT NULL,
    start_request_id BLOB NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
) ENGINE = InnoDB;

CREATE TABLE history_node (
    namespace_id VARBINARY(255) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    first_event_id BIGINT NOT NULL,
    last_event_id BIGINT NOT NULL,
    data LONGBLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id, first_event_id)
) ENGINE = InnoDB;

CREATE TABLE transfer_tasks (
    shard_id INT NOT NULL,
    task_id BIGINT NOT NULL,
    namespace_id VARBINARY(255) NOT NULL,
    workflow_id VARBINARY(1000) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    data MEDIUMBLOB NOT NULL,
    PRIMARY KEY (shard_id, task_id)
) ENGINE = InnoDB;
