-- Version 1.1: visibility's own tables, in the main database so that a run's visibility is
-- written in the same transaction as its state (see the PostgreSQL schema of this version for
-- the columns). Text is VARBINARY, compared bytewise as elsewhere; a search-attribute value
-- is at most 2 KiB.

CREATE TABLE executions_visibility (
    namespace_id VARBINARY(255) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    sort_time BIGINT NOT NULL,
    workflow_id VARBINARY(1000) NOT NULL,
    workflow_type VARBINARY(1000) NOT NULL,
    task_queue VARBINARY(1000) NOT NULL,
    status BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    execution_time BIGINT NOT NULL,
    close_time BIGINT,
    execution_duration BIGINT,
    history_length BIGINT,
    history_size_bytes BIGINT,
    state_transition_count BIGINT,
    parent_workflow_id VARBINARY(1000),
    parent_run_id VARBINARY(255),
    root_workflow_id VARBINARY(1000) NOT NULL,
    root_run_id VARBINARY(255) NOT NULL,
    memo MEDIUMBLOB NOT NULL,
    search_attributes MEDIUMBLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id),
    KEY executions_visibility_by_order (namespace_id, sort_time DESC, start_time DESC, run_id),
    KEY executions_visibility_by_workflow_id (namespace_id, workflow_id),
    KEY executions_visibility_by_type (namespace_id, workflow_type, sort_time DESC, start_time DESC, run_id),
    KEY executions_visibility_by_status (namespace_id, status, sort_time DESC, start_time DESC, run_id)
) ENGINE = InnoDB;

CREATE TABLE executions_visibility_values (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    namespace_id VARBINARY(255) NOT NULL,
    run_id VARBINARY(255) NOT NULL,
    name VARBINARY(255) NOT NULL,
    token BIGINT NOT NULL,
    value_text VARBINARY(2048),
    value_int BIGINT,
    value_double DOUBLE,
    KEY executions_visibility_values_by_run (namespace_id, run_id),
    KEY executions_visibility_values_by_text (namespace_id, name, token, value_text),
    KEY executions_visibility_values_by_int (namespace_id, name, value_int),
    KEY executions_visibility_values_by_double (namespace_id, name, value_double)
) ENGINE = InnoDB;

INSERT INTO executions_visibility
    SELECT namespace_id, run_id,
        CASE WHEN status = 1 THEN 9223372036854775807 ELSE close_time * 1000000 END,
        workflow_id, workflow_type, task_queue, status, start_time * 1000000, execution_time * 1000000,
        CASE WHEN status = 1 THEN NULL ELSE close_time * 1000000 END,
        CASE WHEN status = 1 THEN NULL ELSE (close_time - execution_time) * 1000000 END,
        CASE WHEN status = 1 THEN NULL ELSE next_event_id - 1 END,
        NULL, NULL, NULLIF(parent_workflow_id, ''), NULLIF(parent_run_id, ''), workflow_id, run_id,
        COALESCE(memo, ''), COALESCE(search_attributes, '')
    FROM executions;
