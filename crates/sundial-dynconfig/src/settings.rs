//! Every dynamic-config setting Sundial declares: key, type, precedence kind, default and
//! description, once each. Defaults follow Temporal's.
//!
//! To add one: declare a `static` here, add it to [`ALL`], and read it through a
//! [`crate::Handle`]. Document new keys with `Since vX.Y` in the description.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::convert::{duration_field, seconds_field};
use crate::setting::{AnySetting, ConstrainedDefault, Filter, Kind, Setting};

const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

/// Retry settings used when an activity or workflow gives no (or a partial) retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrySettings {
    #[serde(rename = "InitialIntervalInSeconds", with = "seconds_field")]
    pub initial_interval: Duration,
    /// Maximum interval = this × initial interval.
    #[serde(rename = "MaximumIntervalCoefficient")]
    pub maximum_interval_coefficient: f64,
    #[serde(rename = "BackoffCoefficient")]
    pub backoff_coefficient: f64,
    /// 0 = unlimited.
    #[serde(rename = "MaximumAttempts")]
    pub maximum_attempts: i64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            initial_interval: Duration::from_secs(1),
            maximum_interval_coefficient: 100.0,
            backoff_coefficient: 2.0,
            maximum_attempts: 0,
        }
    }
}

crate::struct_setting_value!(RetrySettings, "struct RetrySettings");

/// Circuit breaker of the outbound queue, per destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitBreakerSettings {
    #[serde(rename = "MaxRequests")]
    pub max_requests: i64,
    #[serde(rename = "Interval", with = "duration_field")]
    pub interval: Duration,
    #[serde(rename = "Timeout", with = "duration_field")]
    pub timeout: Duration,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        CircuitBreakerSettings {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(60),
        }
    }
}

crate::struct_setting_value!(CircuitBreakerSettings, "struct CircuitBreakerSettings");

/// The per-namespace worker's task queue (exists in every namespace).
pub const PER_NAMESPACE_WORKER_TASK_QUEUE: &str = "temporal-sys-per-ns-tq";
/// The system namespace whose activity queues run with one partition.
pub const SYSTEM_LOCAL_NAMESPACE: &str = "temporal-system";

const fn queue(namespace: &'static str, task_queue: &'static str) -> Filter<'static> {
    Filter {
        namespace,
        namespace_id: "",
        task_queue,
        task_type: 0,
        history_task_type: 0,
        shard_id: 0,
        destination: "",
        chasm_task_type: "",
    }
}

const SYSTEM_QUEUE_PARTITIONS: &[ConstrainedDefault<i64>] = &[
    ConstrainedDefault {
        constraints: queue("", PER_NAMESPACE_WORKER_TASK_QUEUE),
        value: 1,
    },
    ConstrainedDefault {
        constraints: queue(SYSTEM_LOCAL_NAMESPACE, "default-worker-tq"),
        value: 1,
    },
    ConstrainedDefault {
        constraints: queue(SYSTEM_LOCAL_NAMESPACE, "temporal-sys-migration-activity-tq"),
        value: 1,
    },
    ConstrainedDefault {
        constraints: queue(
            SYSTEM_LOCAL_NAMESPACE,
            "temporal-sys-add-search-attributes-activity-tq",
        ),
        value: 1,
    },
];

/// Read partitions of a task queue.
pub static MATCHING_NUM_TASKQUEUE_READ_PARTITIONS: Setting<i64> =
    Setting::with_constrained_defaults(
        "matching.numTaskqueueReadPartitions",
        Kind::TaskQueue,
        || 4,
        SYSTEM_QUEUE_PARTITIONS,
        "Read partitions of a task queue (1 for system queues unless set for them).",
    );

/// Write partitions of a task queue.
pub static MATCHING_NUM_TASKQUEUE_WRITE_PARTITIONS: Setting<i64> =
    Setting::with_constrained_defaults(
        "matching.numTaskqueueWritePartitions",
        Kind::TaskQueue,
        || 4,
        SYSTEM_QUEUE_PARTITIONS,
        "Write partitions of a task queue (1 for system queues unless set for them).",
    );

/// Interval at which matching persists a task queue's ack level.
pub static MATCHING_UPDATE_ACK_INTERVAL: Setting<Duration> = Setting::with_constrained_defaults(
    "matching.updateAckInterval",
    Kind::TaskQueue,
    || Duration::from_secs(60),
    &[ConstrainedDefault {
        constraints: queue("", PER_NAMESPACE_WORKER_TASK_QUEUE),
        value: Duration::from_secs(300),
    }],
    "Interval at which matching persists a task queue's ack level.",
);

/// Retry settings for activities whose retry policy leaves fields unset.
pub static HISTORY_DEFAULT_ACTIVITY_RETRY_POLICY: Setting<RetrySettings> = Setting::new(
    "history.defaultActivityRetryPolicy",
    Kind::Namespace,
    RetrySettings::default,
    "Default retry policy fields for activities.",
);

/// Retry settings for workflows with a partial retry policy.
pub static HISTORY_DEFAULT_WORKFLOW_RETRY_POLICY: Setting<RetrySettings> = Setting::new(
    "history.defaultWorkflowRetryPolicy",
    Kind::Namespace,
    RetrySettings::default,
    "Default retry policy fields for workflows.",
);

/// Outbound-queue circuit breaker per destination.
pub static HISTORY_OUTBOUND_QUEUE_CIRCUIT_BREAKER_SETTINGS: Setting<CircuitBreakerSettings> =
    Setting::new(
        "history.outboundQueue.circuitBreakerSettings",
        Kind::Destination,
        CircuitBreakerSettings::default,
        "Circuit breaker settings of the outbound queue per destination.",
    );

/// How often typed subscriptions poll a source that cannot push changes.
pub static SUBSCRIPTION_POLL_INTERVAL: Setting<Duration> = Setting::new(
    "dynamicconfig.subscriptionPollInterval",
    Kind::Global,
    || Duration::from_secs(60),
    "How often typed subscriptions poll a source that cannot push changes.",
);

/// Per-instance frontend request rate limit (requests per second).
pub static FRONTEND_RPS: Setting<i64> = Setting::new(
    "frontend.rps",
    Kind::Global,
    || 2400,
    "Per-instance frontend request rate limit (requests per second).",
);

/// Cluster-wide frontend request rate limit, split across frontends; 0 = off.
pub static FRONTEND_GLOBAL_RPS: Setting<i64> = Setting::new(
    "frontend.globalRPS",
    Kind::Global,
    || 0,
    "Cluster-wide frontend request rate limit, split across frontends; 0 = off.",
);

/// Per-instance request rate limit for one namespace.
pub static FRONTEND_NAMESPACE_RPS: Setting<i64> = Setting::new(
    "frontend.namespaceRPS",
    Kind::Namespace,
    || 2400,
    "Per-instance request rate limit for one namespace.",
);

/// Cluster-wide per-namespace rate limit, split across frontends; when non-zero it replaces frontend.namespaceRPS.
pub static FRONTEND_GLOBAL_NAMESPACE_RPS: Setting<i64> = Setting::new(
    "frontend.globalNamespaceRPS",
    Kind::Namespace,
    || 0,
    "Cluster-wide per-namespace rate limit, split across frontends; when non-zero it replaces frontend.namespaceRPS.",
);

/// Most search attributes one run may set.
pub static FRONTEND_SEARCH_ATTRIBUTES_NUMBER_OF_KEYS_LIMIT: Setting<i64> = Setting::new(
    "frontend.searchAttributesNumberOfKeysLimit",
    Kind::Namespace,
    || 100,
    "Most search attributes one run may set.",
);

/// Largest search attribute value, in bytes.
pub static FRONTEND_SEARCH_ATTRIBUTES_SIZE_OF_VALUE_LIMIT: Setting<i64> = Setting::new(
    "frontend.searchAttributesSizeOfValueLimit",
    Kind::Namespace,
    || 2 * 1024,
    "Largest search attribute value, in bytes.",
);

/// Largest encoded map of a run's search attributes, in bytes.
pub static FRONTEND_SEARCH_ATTRIBUTES_TOTAL_SIZE_LIMIT: Setting<i64> = Setting::new(
    "frontend.searchAttributesTotalSizeLimit",
    Kind::Namespace,
    || 40 * 1024,
    "Largest encoded map of a run's search attributes, in bytes.",
);

/// Most workflow updates in flight (admitted or accepted, not completed) on one run.
pub static HISTORY_MAX_IN_FLIGHT_UPDATES: Setting<i64> = Setting::new(
    "history.maxInFlightUpdates",
    Kind::Namespace,
    || 10,
    "Most workflow updates in flight (admitted or accepted, not completed) on one run.",
);

/// Largest total size of the requests of the updates in flight on one run, in bytes.
pub static HISTORY_MAX_IN_FLIGHT_UPDATE_PAYLOADS: Setting<i64> = Setting::new(
    "history.maxInFlightUpdatePayloads",
    Kind::Namespace,
    || 20 * 1024 * 1024,
    "Largest total size of the requests of the updates in flight on one run, in bytes.",
);

/// Most distinct workflow updates one run may have (in flight and completed).
pub static HISTORY_MAX_TOTAL_UPDATES: Setting<i64> = Setting::new(
    "history.maxTotalUpdates",
    Kind::Namespace,
    || 2000,
    "Most distinct workflow updates one run may have (in flight and completed).",
);

/// Per-instance visibility request rate limit for one namespace.
pub static FRONTEND_NAMESPACE_RPS_VISIBILITY: Setting<i64> = Setting::new(
    "frontend.namespaceRPS.visibility",
    Kind::Namespace,
    || 10,
    "Per-instance visibility request rate limit for one namespace.",
);

/// Cluster-wide visibility rate limit for one namespace; 0 = off.
pub static FRONTEND_GLOBAL_NAMESPACE_RPS_VISIBILITY: Setting<i64> = Setting::new(
    "frontend.globalNamespaceRPS.visibility",
    Kind::Namespace,
    || 0,
    "Cluster-wide visibility rate limit for one namespace; 0 = off.",
);

/// Concurrent long-running requests per namespace per instance.
pub static FRONTEND_NAMESPACE_COUNT: Setting<i64> = Setting::new(
    "frontend.namespaceCount",
    Kind::Namespace,
    || 1200,
    "Concurrent long-running requests per namespace per instance.",
);

/// Cluster-wide concurrent long-running requests per namespace; 0 = off.
pub static FRONTEND_GLOBAL_NAMESPACE_COUNT: Setting<i64> = Setting::new(
    "frontend.globalNamespaceCount",
    Kind::Namespace,
    || 0,
    "Cluster-wide concurrent long-running requests per namespace; 0 = off.",
);

/// Frontend persistence queries per second per instance.
pub static FRONTEND_PERSISTENCE_MAX_QPS: Setting<i64> = Setting::new(
    "frontend.persistenceMaxQPS",
    Kind::Global,
    || 2000,
    "Frontend persistence queries per second per instance.",
);

/// Cluster-wide frontend persistence QPS; 0 = off.
pub static FRONTEND_PERSISTENCE_GLOBAL_MAX_QPS: Setting<i64> = Setting::new(
    "frontend.persistenceGlobalMaxQPS",
    Kind::Global,
    || 0,
    "Cluster-wide frontend persistence QPS; 0 = off.",
);

/// Largest visibility page a list request may ask for.
pub static FRONTEND_VISIBILITY_MAX_PAGE_SIZE: Setting<i64> = Setting::new(
    "frontend.visibilityMaxPageSize",
    Kind::Namespace,
    || 1000,
    "Largest visibility page a list request may ask for.",
);

/// Largest history page GetWorkflowExecutionHistory returns.
pub static FRONTEND_HISTORY_MAX_PAGE_SIZE: Setting<i64> = Setting::new(
    "frontend.historyMaxPageSize",
    Kind::Namespace,
    || 256,
    "Largest history page GetWorkflowExecutionHistory returns.",
);

/// Largest history page returned to a poller.
pub static LIMIT_HISTORY_MAX_PAGE_SIZE: Setting<i64> = Setting::new(
    "limit.historyMaxPageSize",
    Kind::Namespace,
    || 256,
    "Largest history page returned to a poller.",
);

/// Minimum interval between client keepalive pings.
pub static FRONTEND_KEEP_ALIVE_MIN_TIME: Setting<Duration> = Setting::new(
    "frontend.keepAliveMinTime",
    Kind::Global,
    || Duration::from_secs(10),
    "Minimum interval between client keepalive pings.",
);

/// Age after which a client connection is closed gracefully.
pub static FRONTEND_KEEP_ALIVE_MAX_CONNECTION_AGE: Setting<Duration> = Setting::new(
    "frontend.keepAliveMaxConnectionAge",
    Kind::Global,
    || Duration::from_secs(300),
    "Age after which a client connection is closed gracefully.",
);

/// Allows UpdateWorkflowExecution in the namespace.
pub static FRONTEND_ENABLE_UPDATE_WORKFLOW_EXECUTION: Setting<bool> = Setting::new(
    "frontend.enableUpdateWorkflowExecution",
    Kind::Namespace,
    || true,
    "Allows UpdateWorkflowExecution in the namespace.",
);

/// Eager activity dispatch: activities a workflow task schedules with
/// `request_eager_execution` start at once and return in the completion's response.
/// Temporal's compiled default is off; its `start-dev` (and Sundial's) turns it on.
pub static SYSTEM_ENABLE_ACTIVITY_EAGER_EXECUTION: Setting<bool> = Setting::new(
    "system.enableActivityEagerExecution",
    Kind::Namespace,
    || false,
    "Start activities requested for eager execution inside the workflow task completion.",
);

/// Matching request rate limit per instance.
pub static MATCHING_RPS: Setting<i64> = Setting::new(
    "matching.rps",
    Kind::Global,
    || 1200,
    "Matching request rate limit per instance.",
);

/// Matching persistence queries per second per instance.
pub static MATCHING_PERSISTENCE_MAX_QPS: Setting<i64> = Setting::new(
    "matching.persistenceMaxQPS",
    Kind::Global,
    || 3000,
    "Matching persistence queries per second per instance.",
);

/// Polls a partition forwards to its parent at once.
pub static MATCHING_FORWARDER_MAX_OUTSTANDING_POLLS: Setting<i64> = Setting::new(
    "matching.forwarderMaxOutstandingPolls",
    Kind::TaskQueue,
    || 1,
    "Polls a partition forwards to its parent at once.",
);

/// Rate at which a partition forwards tasks and polls to its parent.
pub static MATCHING_FORWARDER_MAX_RATE_PER_SECOND: Setting<f64> = Setting::new(
    "matching.forwarderMaxRatePerSecond",
    Kind::TaskQueue,
    || 10.0,
    "Rate at which a partition forwards tasks and polls to its parent.",
);

/// How long a task-queue poll waits for a task.
pub static MATCHING_LONG_POLL_EXPIRATION_INTERVAL: Setting<Duration> = Setting::new(
    "matching.longPollExpirationInterval",
    Kind::TaskQueue,
    || Duration::from_secs(60),
    "How long a task-queue poll waits for a task.",
);

/// Idle time after which a task-queue partition is unloaded.
pub static MATCHING_MAX_TASK_QUEUE_IDLE_TIME: Setting<Duration> = Setting::new(
    "matching.maxTaskQueueIdleTime",
    Kind::TaskQueue,
    || Duration::from_secs(300),
    "Idle time after which a task-queue partition is unloaded.",
);

/// Backlog tasks read per batch.
pub static MATCHING_GET_TASKS_BATCH_SIZE: Setting<i64> = Setting::new(
    "matching.getTasksBatchSize",
    Kind::TaskQueue,
    || 1000,
    "Backlog tasks read per batch.",
);

/// A query fails fast when no poller was seen for this long.
pub static MATCHING_QUERY_POLLER_UNAVAILABLE_WINDOW: Setting<Duration> = Setting::new(
    "matching.queryPollerUnavailableWindow",
    Kind::Global,
    || Duration::from_secs(20),
    "A query fails fast when no poller was seen for this long.",
);

/// Dispatch rate per task-queue partition.
pub static ADMIN_MATCHING_PARTITION_DISPATCH_RATE: Setting<f64> = Setting::new(
    "admin.matchingNamespaceTaskqueueToPartitionDispatchRate",
    Kind::TaskQueue,
    || 1000.0,
    "Dispatch rate per task-queue partition.",
);

/// History request rate limit per instance.
pub static HISTORY_RPS: Setting<i64> = Setting::new(
    "history.rps",
    Kind::Global,
    || 3000,
    "History request rate limit per instance.",
);

/// History persistence queries per second per instance.
pub static HISTORY_PERSISTENCE_MAX_QPS: Setting<i64> = Setting::new(
    "history.persistenceMaxQPS",
    Kind::Global,
    || 9000,
    "History persistence queries per second per instance.",
);

/// Cluster-wide history persistence QPS; 0 = off.
pub static HISTORY_PERSISTENCE_GLOBAL_MAX_QPS: Setting<i64> = Setting::new(
    "history.persistenceGlobalMaxQPS",
    Kind::Global,
    || 0,
    "Cluster-wide history persistence QPS; 0 = off.",
);

/// Persistence QPS per shard and namespace; 0 = off.
pub static HISTORY_PERSISTENCE_PER_SHARD_NAMESPACE_MAX_QPS: Setting<i64> = Setting::new(
    "history.persistencePerShardNamespaceMaxQPS",
    Kind::Namespace,
    || 0,
    "Persistence QPS per shard and namespace; 0 = off.",
);

/// Bound the execution cache by bytes instead of entries (restart needed).
pub static HISTORY_CACHE_SIZE_BASED_LIMIT: Setting<bool> = Setting::new(
    "history.cacheSizeBasedLimit",
    Kind::Global,
    || false,
    "Bound the execution cache by bytes instead of entries (restart needed).",
);

/// Mutable-state cache capacity per host, in entries.
pub static HISTORY_HOST_LEVEL_CACHE_MAX_SIZE: Setting<i64> = Setting::new(
    "history.hostLevelCacheMaxSize",
    Kind::Global,
    || 128_000,
    "Mutable-state cache capacity per host, in entries.",
);

/// Mutable-state cache capacity per host in bytes, when size-based.
pub static HISTORY_HOST_LEVEL_CACHE_MAX_SIZE_BYTES: Setting<i64> = Setting::new(
    "history.hostLevelCacheMaxSizeBytes",
    Kind::Global,
    || 1_048_576_000,
    "Mutable-state cache capacity per host in bytes, when size-based.",
);

/// Time an idle execution stays in the cache (restart needed).
pub static HISTORY_CACHE_TTL: Setting<Duration> = Setting::new(
    "history.cacheTTL",
    Kind::Global,
    || Duration::from_secs(3600),
    "Time an idle execution stays in the cache (restart needed).",
);

/// Events cache capacity in bytes.
pub static HISTORY_EVENTS_CACHE_MAX_SIZE_BYTES: Setting<i64> = Setting::new(
    "history.eventsCacheMaxSizeBytes",
    Kind::Global,
    || 524_288,
    "Events cache capacity in bytes.",
);

/// How long a history long poll waits for new events.
pub static HISTORY_LONG_POLL_EXPIRATION_INTERVAL: Setting<Duration> = Setting::new(
    "history.longPollExpirationInterval",
    Kind::Namespace,
    || Duration::from_secs(20),
    "How long a history long poll, and a workflow update call, waits.",
);

/// Workflow task start-to-close timeout when the request gives 0.
pub static HISTORY_DEFAULT_WORKFLOW_TASK_TIMEOUT: Setting<Duration> = Setting::new(
    "history.defaultWorkflowTaskTimeout",
    Kind::Namespace,
    || Duration::from_secs(10),
    "Workflow task start-to-close timeout when the request gives 0.",
);

/// Minimum time between two runs of one workflow id (with enableWorkflowIdReuseStartTimeValidation).
pub static HISTORY_WORKFLOW_ID_REUSE_MINIMAL_INTERVAL: Setting<Duration> = Setting::new(
    "history.workflowIdReuseMinimalInterval",
    Kind::Namespace,
    || Duration::from_secs(1),
    "Minimum time between two runs of one workflow id (with enableWorkflowIdReuseStartTimeValidation).",
);

/// Enforce history.workflowIdReuseMinimalInterval.
pub static HISTORY_ENABLE_WORKFLOW_ID_REUSE_START_TIME_VALIDATION: Setting<bool> = Setting::new(
    "history.enableWorkflowIdReuseStartTimeValidation",
    Kind::Namespace,
    || false,
    "Enforce history.workflowIdReuseMinimalInterval.",
);

/// Longest backoff between workflow task retries.
pub static HISTORY_WORKFLOW_TASK_RETRY_MAX_INTERVAL: Setting<Duration> = Setting::new(
    "history.workflowTaskRetryMaxInterval",
    Kind::Global,
    || Duration::from_secs(600),
    "Longest backoff between workflow task retries.",
);

/// How long a workflow task may keep heartbeating.
pub static HISTORY_WORKFLOW_TASK_HEARTBEAT_TIMEOUT: Setting<Duration> = Setting::new(
    "history.workflowTaskHeartbeatTimeout",
    Kind::Namespace,
    || Duration::from_secs(1800),
    "How long a workflow task may keep heartbeating.",
);

/// Buffered events that force a workflow task to fail.
pub static HISTORY_MAXIMUM_BUFFERED_EVENTS_BATCH: Setting<i64> = Setting::new(
    "history.maximumBufferedEventsBatch",
    Kind::Global,
    || 100,
    "Buffered events that force a workflow task to fail.",
);

/// Buffered event bytes that force a workflow task to fail.
pub static HISTORY_MAXIMUM_BUFFERED_EVENTS_SIZE_IN_BYTES: Setting<i64> = Setting::new(
    "history.maximumBufferedEventsSizeInBytes",
    Kind::Global,
    || 2 * MIB,
    "Buffered event bytes that force a workflow task to fail.",
);

/// Queries buffered per execution while a workflow task runs.
pub static HISTORY_MAX_BUFFERED_QUERY_COUNT: Setting<i64> = Setting::new(
    "history.MaxBufferedQueryCount",
    Kind::Global,
    || 1,
    "Queries buffered per execution while a workflow task runs.",
);

/// Include transient and speculative workflow task events in poll responses.
pub static HISTORY_SEND_TRANSIENT_OR_SPECULATIVE_WORKFLOW_TASK_EVENTS: Setting<bool> = Setting::new(
    "history.sendTransientOrSpeculativeWorkflowTaskEvents",
    Kind::Namespace,
    || true,
    "Include transient and speculative workflow task events in poll responses.",
);

/// Signals one execution may receive.
pub static HISTORY_MAXIMUM_SIGNALS_PER_EXECUTION: Setting<i64> = Setting::new(
    "history.maximumSignalsPerExecution",
    Kind::Namespace,
    || 10_000,
    "Signals one execution may receive.",
);

/// Drop repeated workflow task failure events.
pub static HISTORY_ENABLE_DROP_REPEATED_WORKFLOW_TASK_FAILURES: Setting<bool> = Setting::new(
    "history.enableDropRepeatedWorkflowTaskFailures",
    Kind::Namespace,
    || false,
    "Drop repeated workflow task failure events.",
);

/// Apply child parent-close policies.
pub static HISTORY_ENABLE_PARENT_CLOSE_POLICY: Setting<bool> = Setting::new(
    "history.enableParentClosePolicy",
    Kind::Namespace,
    || true,
    "Apply child parent-close policies.",
);

/// Delay before a standby task asks for missing events.
pub static HISTORY_STANDBY_TASK_MISSING_EVENTS_RESEND_DELAY: Setting<Duration> = Setting::new(
    "history.standbyTaskMissingEventsResendDelay",
    Kind::TaskType,
    || Duration::from_secs(600),
    "Delay before a standby task asks for missing events.",
);

/// Retries of a failing replication task per shard.
pub static HISTORY_REPLICATION_TASK_PROCESSOR_ERROR_RETRY_MAX_ATTEMPTS: Setting<i64> = Setting::new(
    "history.ReplicationTaskProcessorErrorRetryMaxAttempts",
    Kind::ShardId,
    || 80,
    "Retries of a failing replication task per shard.",
);

/// Outbound tasks per second per destination and host.
pub static HISTORY_OUTBOUND_QUEUE_HOST_SCHEDULER_MAX_TASK_RPS: Setting<f64> = Setting::new(
    "history.outboundQueue.hostScheduler.maxTaskRPS",
    Kind::Destination,
    || 100.0,
    "Outbound tasks per second per destination and host.",
);

/// Skip event reapplication for the namespace id.
pub static HISTORY_SKIP_REAPPLICATION_BY_NAMESPACE_ID: Setting<bool> = Setting::new(
    "history.SkipReapplicationByNamespaceID",
    Kind::NamespaceId,
    || false,
    "Skip event reapplication for the namespace id.",
);

/// Delay after which a standby CHASM task is discarded.
pub static HISTORY_CHASM_STANDBY_TASK_DISCARD_DELAY: Setting<Duration> = Setting::new(
    "history.ChasmStandbyTaskDiscardDelay",
    Kind::ChasmTaskType,
    || Duration::from_secs(86_400),
    "Delay after which a standby CHASM task is discarded.",
);

/// Longest id or name, in bytes.
pub static LIMIT_MAX_ID_LENGTH: Setting<i64> = Setting::new(
    "limit.maxIDLength",
    Kind::Namespace,
    || 1000,
    "Longest id or name, in bytes.",
);

/// Payload size above which a request is rejected.
pub static LIMIT_BLOB_SIZE_ERROR: Setting<i64> = Setting::new(
    "limit.blobSize.error",
    Kind::Namespace,
    || 2 * MIB,
    "Payload size above which a request is rejected.",
);

/// Payload size above which a warning is logged.
pub static LIMIT_BLOB_SIZE_WARN: Setting<i64> = Setting::new(
    "limit.blobSize.warn",
    Kind::Namespace,
    || 512 * KIB,
    "Payload size above which a warning is logged.",
);

/// History size at which the execution is terminated.
pub static LIMIT_HISTORY_SIZE_ERROR: Setting<i64> = Setting::new(
    "limit.historySize.error",
    Kind::Namespace,
    || 50 * MIB,
    "History size at which the execution is terminated.",
);

/// History size above which a warning is logged.
pub static LIMIT_HISTORY_SIZE_WARN: Setting<i64> = Setting::new(
    "limit.historySize.warn",
    Kind::Namespace,
    || 10 * MIB,
    "History size above which a warning is logged.",
);

/// Event count at which the execution is terminated.
pub static LIMIT_HISTORY_COUNT_ERROR: Setting<i64> = Setting::new(
    "limit.historyCount.error",
    Kind::Namespace,
    || 51_200,
    "Event count at which the execution is terminated.",
);

/// Event count above which a warning is logged.
pub static LIMIT_HISTORY_COUNT_WARN: Setting<i64> = Setting::new(
    "limit.historyCount.warn",
    Kind::Namespace,
    || 10_240,
    "Event count above which a warning is logged.",
);

/// Event count at which workflow tasks suggest continue-as-new.
pub static LIMIT_HISTORY_COUNT_SUGGEST_CONTINUE_AS_NEW: Setting<i64> = Setting::new(
    "limit.historyCount.suggestContinueAsNew",
    Kind::Namespace,
    || 4096,
    "Event count at which workflow tasks suggest continue-as-new.",
);

/// History size at which workflow tasks suggest continue-as-new.
pub static LIMIT_HISTORY_SIZE_SUGGEST_CONTINUE_AS_NEW: Setting<i64> = Setting::new(
    "limit.historySize.suggestContinueAsNew",
    Kind::Namespace,
    || 4 * MIB,
    "History size at which workflow tasks suggest continue-as-new.",
);

/// Pending activities per execution.
pub static LIMIT_NUM_PENDING_ACTIVITIES_ERROR: Setting<i64> = Setting::new(
    "limit.numPendingActivities.error",
    Kind::Namespace,
    || 2000,
    "Pending activities per execution.",
);

/// Smallest retention of a global namespace.
pub static SYSTEM_NAMESPACE_MIN_RETENTION_GLOBAL: Setting<Duration> = Setting::new(
    "system.namespaceMinRetentionGlobal",
    Kind::Global,
    || Duration::from_secs(86_400),
    "Smallest retention of a global namespace.",
);

/// Smallest retention of a local namespace.
pub static SYSTEM_NAMESPACE_MIN_RETENTION_LOCAL: Setting<Duration> = Setting::new(
    "system.namespaceMinRetentionLocal",
    Kind::Global,
    || Duration::from_secs(3600),
    "Smallest retention of a local namespace.",
);

/// Largest persistence transaction in bytes.
pub static SYSTEM_TRANSACTION_SIZE_LIMIT: Setting<i64> = Setting::new(
    "system.transactionSizeLimit",
    Kind::Global,
    || 4 * MIB,
    "Largest persistence transaction in bytes.",
);

/// Worker-service persistence queries per second.
pub static WORKER_PERSISTENCE_MAX_QPS: Setting<i64> = Setting::new(
    "worker.persistenceMaxQPS",
    Kind::Global,
    || 500,
    "Worker-service persistence queries per second.",
);

/// Every declared setting, for the registry.
pub static ALL: &[&dyn AnySetting] = &[
    &MATCHING_NUM_TASKQUEUE_READ_PARTITIONS,
    &MATCHING_NUM_TASKQUEUE_WRITE_PARTITIONS,
    &MATCHING_UPDATE_ACK_INTERVAL,
    &HISTORY_DEFAULT_ACTIVITY_RETRY_POLICY,
    &HISTORY_DEFAULT_WORKFLOW_RETRY_POLICY,
    &HISTORY_OUTBOUND_QUEUE_CIRCUIT_BREAKER_SETTINGS,
    &SUBSCRIPTION_POLL_INTERVAL,
    &FRONTEND_RPS,
    &FRONTEND_GLOBAL_RPS,
    &FRONTEND_NAMESPACE_RPS,
    &FRONTEND_GLOBAL_NAMESPACE_RPS,
    &FRONTEND_NAMESPACE_RPS_VISIBILITY,
    &FRONTEND_SEARCH_ATTRIBUTES_NUMBER_OF_KEYS_LIMIT,
    &FRONTEND_SEARCH_ATTRIBUTES_SIZE_OF_VALUE_LIMIT,
    &FRONTEND_SEARCH_ATTRIBUTES_TOTAL_SIZE_LIMIT,
    &HISTORY_MAX_IN_FLIGHT_UPDATES,
    &HISTORY_MAX_IN_FLIGHT_UPDATE_PAYLOADS,
    &HISTORY_MAX_TOTAL_UPDATES,
    &FRONTEND_GLOBAL_NAMESPACE_RPS_VISIBILITY,
    &FRONTEND_NAMESPACE_COUNT,
    &FRONTEND_GLOBAL_NAMESPACE_COUNT,
    &FRONTEND_PERSISTENCE_MAX_QPS,
    &FRONTEND_PERSISTENCE_GLOBAL_MAX_QPS,
    &FRONTEND_VISIBILITY_MAX_PAGE_SIZE,
    &FRONTEND_HISTORY_MAX_PAGE_SIZE,
    &LIMIT_HISTORY_MAX_PAGE_SIZE,
    &FRONTEND_KEEP_ALIVE_MIN_TIME,
    &FRONTEND_KEEP_ALIVE_MAX_CONNECTION_AGE,
    &FRONTEND_ENABLE_UPDATE_WORKFLOW_EXECUTION,
    &SYSTEM_ENABLE_ACTIVITY_EAGER_EXECUTION,
    &MATCHING_RPS,
    &MATCHING_PERSISTENCE_MAX_QPS,
    &MATCHING_FORWARDER_MAX_OUTSTANDING_POLLS,
    &MATCHING_FORWARDER_MAX_RATE_PER_SECOND,
    &MATCHING_LONG_POLL_EXPIRATION_INTERVAL,
    &MATCHING_MAX_TASK_QUEUE_IDLE_TIME,
    &MATCHING_GET_TASKS_BATCH_SIZE,
    &MATCHING_QUERY_POLLER_UNAVAILABLE_WINDOW,
    &ADMIN_MATCHING_PARTITION_DISPATCH_RATE,
    &HISTORY_RPS,
    &HISTORY_PERSISTENCE_MAX_QPS,
    &HISTORY_PERSISTENCE_GLOBAL_MAX_QPS,
    &HISTORY_PERSISTENCE_PER_SHARD_NAMESPACE_MAX_QPS,
    &HISTORY_CACHE_SIZE_BASED_LIMIT,
    &HISTORY_HOST_LEVEL_CACHE_MAX_SIZE,
    &HISTORY_HOST_LEVEL_CACHE_MAX_SIZE_BYTES,
    &HISTORY_CACHE_TTL,
    &HISTORY_EVENTS_CACHE_MAX_SIZE_BYTES,
    &HISTORY_LONG_POLL_EXPIRATION_INTERVAL,
    &HISTORY_DEFAULT_WORKFLOW_TASK_TIMEOUT,
    &HISTORY_WORKFLOW_ID_REUSE_MINIMAL_INTERVAL,
    &HISTORY_ENABLE_WORKFLOW_ID_REUSE_START_TIME_VALIDATION,
    &HISTORY_WORKFLOW_TASK_RETRY_MAX_INTERVAL,
    &HISTORY_WORKFLOW_TASK_HEARTBEAT_TIMEOUT,
    &HISTORY_MAXIMUM_BUFFERED_EVENTS_BATCH,
    &HISTORY_MAXIMUM_BUFFERED_EVENTS_SIZE_IN_BYTES,
    &HISTORY_MAX_BUFFERED_QUERY_COUNT,
    &HISTORY_SEND_TRANSIENT_OR_SPECULATIVE_WORKFLOW_TASK_EVENTS,
    &HISTORY_MAXIMUM_SIGNALS_PER_EXECUTION,
    &HISTORY_ENABLE_DROP_REPEATED_WORKFLOW_TASK_FAILURES,
    &HISTORY_ENABLE_PARENT_CLOSE_POLICY,
    &HISTORY_STANDBY_TASK_MISSING_EVENTS_RESEND_DELAY,
    &HISTORY_REPLICATION_TASK_PROCESSOR_ERROR_RETRY_MAX_ATTEMPTS,
    &HISTORY_OUTBOUND_QUEUE_HOST_SCHEDULER_MAX_TASK_RPS,
    &HISTORY_SKIP_REAPPLICATION_BY_NAMESPACE_ID,
    &HISTORY_CHASM_STANDBY_TASK_DISCARD_DELAY,
    &LIMIT_MAX_ID_LENGTH,
    &LIMIT_BLOB_SIZE_ERROR,
    &LIMIT_BLOB_SIZE_WARN,
    &LIMIT_HISTORY_SIZE_ERROR,
    &LIMIT_HISTORY_SIZE_WARN,
    &LIMIT_HISTORY_COUNT_ERROR,
    &LIMIT_HISTORY_COUNT_WARN,
    &LIMIT_HISTORY_COUNT_SUGGEST_CONTINUE_AS_NEW,
    &LIMIT_HISTORY_SIZE_SUGGEST_CONTINUE_AS_NEW,
    &LIMIT_NUM_PENDING_ACTIVITIES_ERROR,
    &SYSTEM_NAMESPACE_MIN_RETENTION_GLOBAL,
    &SYSTEM_NAMESPACE_MIN_RETENTION_LOCAL,
    &SYSTEM_TRANSACTION_SIZE_LIMIT,
    &WORKER_PERSISTENCE_MAX_QPS,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraints::{ConstrainedValue, Constraints};
    use crate::convert::SettingValue;
    use crate::setting::Registry;
    use crate::value::Value;

    #[test]
    fn registry_is_consistent() {
        let registry = Registry::builtin();
        assert_eq!(registry.len(), ALL.len());
        for setting in registry.iter() {
            // Every default must pass its own validation.
            for entry in setting.default_entries() {
                assert!(setting.validate(&entry.value).is_ok(), "{}", setting.key());
            }
            assert!(!setting.description().is_empty(), "{}", setting.key());
        }
        assert!(registry.get("FRONTEND.RPS").is_some());
    }

    #[test]
    fn constrained_default_beats_user_global() {
        let setting = &MATCHING_NUM_TASKQUEUE_READ_PARTITIONS;
        let user = vec![ConstrainedValue::global(Value::Int(8))];
        let orders = Filter::task_queue("any", "orders", 1);
        let worker = Filter::task_queue("any", PER_NAMESPACE_WORKER_TASK_QUEUE, 1);
        assert_eq!(setting.evaluate(&user, &worker).0, 1);
        assert_eq!(setting.evaluate(&user, &orders).0, 8);
        assert_eq!(setting.evaluate(&[], &orders).0, 4);
        let system = Filter::task_queue(SYSTEM_LOCAL_NAMESPACE, "default-worker-tq", 2);
        assert_eq!(setting.evaluate(&user, &system).0, 1);
        // A more specific user value still wins over the constrained default.
        let specific = vec![ConstrainedValue::new(
            Constraints {
                task_queue_name: PER_NAMESPACE_WORKER_TASK_QUEUE.into(),
                ..Default::default()
            },
            Value::Int(3),
        )];
        assert_eq!(setting.evaluate(&specific, &worker).0, 3);
    }

    #[test]
    fn retry_policy_struct_merge() {
        let setting = &HISTORY_DEFAULT_ACTIVITY_RETRY_POLICY;
        let value = Value::Map(vec![
            ("initialintervalinseconds".into(), Value::Int(5)),
            ("MaximumAttempts".into(), Value::Float(3.9)),
        ]);
        let (policy, result) =
            setting.evaluate(&[ConstrainedValue::global(value)], &Filter::GLOBAL);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(policy.initial_interval, Duration::from_secs(5));
        assert_eq!(policy.maximum_attempts, 3);
        assert_eq!(policy.backoff_coefficient, 2.0);
        assert_eq!(policy.maximum_interval_coefficient, 100.0);

        let (policy, result) = setting.evaluate(
            &[ConstrainedValue::global(Value::String("x".into()))],
            &Filter::GLOBAL,
        );
        assert!(result.is_err());
        assert_eq!(policy, RetrySettings::default());

        let bad_field = Value::Map(vec![(
            "BackoffCoefficient".into(),
            Value::String("fast".into()),
        )]);
        let (policy, result) =
            setting.evaluate(&[ConstrainedValue::global(bad_field)], &Filter::GLOBAL);
        assert!(result.is_err());
        assert_eq!(policy, RetrySettings::default());
    }

    #[test]
    fn struct_default_round_trips_through_value() {
        let default = RetrySettings::default();
        let value = default.to_value();
        assert_eq!(RetrySettings::convert(&value, &default), Ok(default));
        let breaker = CircuitBreakerSettings::default();
        assert_eq!(
            CircuitBreakerSettings::convert(&breaker.to_value(), &breaker),
            Ok(breaker)
        );
    }
}
