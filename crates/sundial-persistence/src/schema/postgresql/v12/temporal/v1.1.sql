-- Version 1.1: visibility's own tables, in the main database so that a run's visibility is
-- written in the same transaction as its state. `executions_visibility` holds one row per
-- run (the system search attributes as columns, times in Unix nanoseconds, `sort_time` the
-- close time or the largest BIGINT while the run is open); `executions_visibility_values`
-- holds each search attribute's values in every form a query compares (text, integer, float,
-- and the Text tokens of strings with token = 1). Existing runs are copied over; their
-- search-attribute values are stored at their next change.

CREATE TABLE executions_visibility (
    namespace_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    sort_time BIGINT NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    workflow_type TEXT COLLATE "C" NOT NULL,
    task_queue TEXT COLLATE "C" NOT NULL,
    status BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    execution_time BIGINT NOT NULL,
    close_time BIGINT,
    execution_duration BIGINT,
    history_length BIGINT,
    history_size_bytes BIGINT,
    state_transition_count BIGINT,
    parent_workflow_id TEXT COLLATE "C",
    parent_run_id TEXT COLLATE "C",
    root_workflow_id TEXT COLLATE "C" NOT NULL,
    root_run_id TEXT COLLATE "C" NOT NULL,
    memo BYTEA NOT NULL,
    search_attributes BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX executions_visibility_by_order ON executions_visibility (namespace_id, sort_time DESC, start_time DESC, run_id);
CREATE INDEX executions_visibility_by_workflow_id ON executions_visibility (namespace_id, workflow_id);
CREATE INDEX executions_visibility_by_type ON executions_visibility (namespace_id, workflow_type, sort_time DESC, start_time DESC, run_id);
CREATE INDEX executions_visibility_by_status ON executions_visibility (namespace_id, status, sort_time DESC, start_time DESC, run_id);

CREATE TABLE executions_visibility_values (
    namespace_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    token BIGINT NOT NULL,
    value_text TEXT COLLATE "C",
    value_int BIGINT,
    value_double DOUBLE PRECISION
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
        COALESCE(memo, ''::bytea), COALESCE(search_attributes, ''::bytea)
    FROM executions;
