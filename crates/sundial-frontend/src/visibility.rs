//! List queries: `ListWorkflowExecutions`, `ScanWorkflowExecutions` (the same in SQL
//! visibility), `CountWorkflowExecutions` and the legacy open/closed lists, answered from the
//! visibility store with Temporal's query language.

use std::collections::HashMap;

use prost::Message;
use prost_types::{Duration, Timestamp};
use sundial_common::{Error, Result};
use sundial_persistence::{VisibilityCursor, VisibilityRow, VisibilityStore};
use sundial_proto::api::common::v1::{
    Memo, Payload, SearchAttributes, WorkflowExecution, WorkflowType,
};
use sundial_proto::api::enums::v1::WorkflowExecutionStatus;
use sundial_proto::api::workflow::v1::WorkflowExecutionInfo;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::NamespaceRef;
use sundial_visibility::validate::annotate;
use sundial_visibility::{Atom, CmpOp, Column, Field, Filter, SaType, Test, Value, parse_query};

/// Temporal's `frontend.visibilityMaxPageSize`: the page size when none is asked, and the most
/// a page holds.
const MAX_PAGE_SIZE: usize = 1000;

#[derive(Clone, PartialEq, prost::Message)]
struct PageToken {
    #[prost(int64, tag = "1")]
    sort_time: i64,
    #[prost(int64, tag = "2")]
    start_time: i64,
    #[prost(string, tag = "3")]
    run_id: String,
}

fn page_size(asked: i32) -> usize {
    if asked <= 0 {
        MAX_PAGE_SIZE
    } else {
        (asked as usize).min(MAX_PAGE_SIZE)
    }
}

fn cursor(token: &[u8]) -> Result<Option<VisibilityCursor>> {
    if token.is_empty() {
        return Ok(None);
    }
    let token = PageToken::decode(token).map_err(|_| Error::invalid("Invalid NextPageToken."))?;
    if token.run_id.is_empty() {
        return Err(Error::invalid("Invalid NextPageToken."));
    }
    Ok(Some(VisibilityCursor {
        sort_time: token.sort_time,
        start_time: token.start_time,
        run_id: token.run_id,
    }))
}

/// The namespace a list runs in, with its custom search attributes (name -> type).
pub(crate) struct Scope<'a> {
    pub namespace: &'a NamespaceRef,
    pub custom: HashMap<String, SaType>,
}

fn parse(scope: &Scope, query: &str) -> Result<sundial_visibility::Query> {
    parse_query(query, &scope.custom).map_err(|error| Error::invalid(error.0))
}

/// One page of the runs `filter` matches; the token is set whenever the page is full.
async fn page(
    store: &dyn VisibilityStore,
    scope: &Scope<'_>,
    filter: &Filter,
    asked_page_size: i32,
    token: &[u8],
) -> Result<(Vec<WorkflowExecutionInfo>, Vec<u8>)> {
    let page_size = page_size(asked_page_size);
    let after = cursor(token)?;
    let rows = store
        .list_visibility(&scope.namespace.id, filter, after, page_size)
        .await?;
    let next_page_token = match rows.last() {
        Some(last) if rows.len() == page_size => {
            let cursor = last.cursor();
            PageToken {
                sort_time: cursor.sort_time,
                start_time: cursor.start_time,
                run_id: cursor.run_id,
            }
            .encode_to_vec()
        }
        _ => Vec::new(),
    };
    Ok((
        rows.into_iter()
            .map(|row| info(&scope.namespace.id, &scope.custom, row))
            .collect(),
        next_page_token,
    ))
}

pub(crate) async fn list(
    store: &dyn VisibilityStore,
    scope: &Scope<'_>,
    request: &ws::ListWorkflowExecutionsRequest,
) -> Result<ws::ListWorkflowExecutionsResponse> {
    let query = parse(scope, &request.query)?;
    let (executions, next_page_token) = page(
        store,
        scope,
        &query.filter,
        request.page_size,
        &request.next_page_token,
    )
    .await?;
    Ok(ws::ListWorkflowExecutionsResponse {
        executions,
        next_page_token,
    })
}

pub(crate) async fn count(
    store: &dyn VisibilityStore,
    scope: &Scope<'_>,
    request: &ws::CountWorkflowExecutionsRequest,
) -> Result<ws::CountWorkflowExecutionsResponse> {
    use ws::count_workflow_executions_response::AggregationGroup;
    let query = parse(scope, &request.query)?;
    let by_status = query
        .group_by_status()
        .map_err(|error| Error::invalid(error.0))?;
    if !by_status {
        let count = store
            .count_visibility(&scope.namespace.id, &query.filter)
            .await?;
        return Ok(ws::CountWorkflowExecutionsResponse {
            count,
            groups: Vec::new(),
        });
    }
    let counts = store
        .count_visibility_by_status(&scope.namespace.id, &query.filter)
        .await?;
    let groups = counts
        .iter()
        .map(|(status, count)| {
            let status = i32::try_from(*status)
                .ok()
                .and_then(|status| WorkflowExecutionStatus::try_from(status).ok())
                .unwrap_or(WorkflowExecutionStatus::Unspecified);
            AggregationGroup {
                group_values: vec![keyword_payload(sundial_visibility::status_name(status))],
                count: *count,
            }
        })
        .collect();
    Ok(ws::CountWorkflowExecutionsResponse {
        count: counts.iter().map(|(_, count)| count).sum(),
        groups,
    })
}

/// A `json/plain` payload of a string, typed `Keyword`, as Temporal gives group values.
fn keyword_payload(text: &str) -> Payload {
    Payload {
        metadata: HashMap::from([
            ("encoding".to_string(), b"json/plain".to_vec()),
            ("type".to_string(), b"Keyword".to_vec()),
        ]),
        data: serde_json_string(text).into_bytes(),
        ..Default::default()
    }
}

fn serde_json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if (c as u32) < 0x20 => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn atom(column: Column, test: Test) -> Filter {
    Filter::Atom(Atom {
        field: Field::Column(column),
        test,
    })
}

/// What the legacy list requests filter by, as a filter: the status test, the start-time
/// window, and the workflow id or type.
fn legacy_filter(
    status: Test,
    start_time_filter: Option<&sundial_proto::api::filter::v1::StartTimeFilter>,
    workflow_id: Option<&str>,
    workflow_type: Option<&str>,
) -> Filter {
    let mut parts = vec![atom(Column::ExecutionStatus, status)];
    if let Some(window) = start_time_filter {
        let nanos = |time: &Option<Timestamp>| {
            time.as_ref()
                .map(|time| time.seconds.saturating_mul(1_000_000_000) + i64::from(time.nanos))
        };
        if let Some(earliest) = nanos(&window.earliest_time) {
            parts.push(atom(
                Column::StartTime,
                Test::Cmp(CmpOp::Ge, Value::Int(earliest)),
            ));
        }
        if let Some(latest) = nanos(&window.latest_time).filter(|latest| *latest > 0) {
            parts.push(atom(
                Column::StartTime,
                Test::Cmp(CmpOp::Le, Value::Int(latest)),
            ));
        }
    }
    if let Some(workflow_id) = workflow_id {
        parts.push(atom(
            Column::WorkflowId,
            Test::Cmp(CmpOp::Eq, Value::Text(workflow_id.to_string())),
        ));
    }
    if let Some(workflow_type) = workflow_type {
        parts.push(atom(
            Column::WorkflowType,
            Test::Cmp(CmpOp::Eq, Value::Text(workflow_type.to_string())),
        ));
    }
    parts.push(Filter::no_namespace_division());
    Filter::And(parts)
}

pub(crate) async fn list_open(
    store: &dyn VisibilityStore,
    scope: &Scope<'_>,
    request: &ws::ListOpenWorkflowExecutionsRequest,
) -> Result<ws::ListOpenWorkflowExecutionsResponse> {
    use ws::list_open_workflow_executions_request::Filters;
    let running = Value::Int(WorkflowExecutionStatus::Running as i64);
    let (workflow_id, workflow_type) = match &request.filters {
        Some(Filters::ExecutionFilter(filter)) => (Some(filter.workflow_id.as_str()), None),
        Some(Filters::TypeFilter(filter)) => (None, Some(filter.name.as_str())),
        None => (None, None),
    };
    let filter = legacy_filter(
        Test::Cmp(CmpOp::Eq, running),
        request.start_time_filter.as_ref(),
        workflow_id,
        workflow_type,
    );
    let (executions, next_page_token) = page(
        store,
        scope,
        &filter,
        request.maximum_page_size,
        &request.next_page_token,
    )
    .await?;
    Ok(ws::ListOpenWorkflowExecutionsResponse {
        executions,
        next_page_token,
    })
}

pub(crate) async fn list_closed(
    store: &dyn VisibilityStore,
    scope: &Scope<'_>,
    request: &ws::ListClosedWorkflowExecutionsRequest,
) -> Result<ws::ListClosedWorkflowExecutionsResponse> {
    use ws::list_closed_workflow_executions_request::Filters;
    let (mut workflow_id, mut workflow_type, mut status) = (None, None, None);
    match &request.filters {
        Some(Filters::ExecutionFilter(filter)) => workflow_id = Some(filter.workflow_id.as_str()),
        Some(Filters::TypeFilter(filter)) => workflow_type = Some(filter.name.as_str()),
        Some(Filters::StatusFilter(filter)) => status = Some(filter.status),
        None => {}
    }
    let test = match status {
        Some(status) if status != WorkflowExecutionStatus::Unspecified as i32 => {
            Test::Cmp(CmpOp::Eq, Value::Int(i64::from(status)))
        }
        _ => Test::Cmp(
            CmpOp::Ne,
            Value::Int(WorkflowExecutionStatus::Running as i64),
        ),
    };
    let filter = legacy_filter(
        test,
        request.start_time_filter.as_ref(),
        workflow_id,
        workflow_type,
    );
    let (executions, next_page_token) = page(
        store,
        scope,
        &filter,
        request.maximum_page_size,
        &request.next_page_token,
    )
    .await?;
    Ok(ws::ListClosedWorkflowExecutionsResponse {
        executions,
        next_page_token,
    })
}

fn timestamp(nanos: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    })
}

fn duration(nanos: i64) -> Option<Duration> {
    Some(Duration {
        seconds: nanos / 1_000_000_000,
        nanos: (nanos % 1_000_000_000) as i32,
    })
}

/// A listed run as Temporal shows it: the close fields only once closed, the memo always, the
/// search attributes.
fn info(
    namespace_id: &str,
    custom: &HashMap<String, SaType>,
    row: VisibilityRow,
) -> WorkflowExecutionInfo {
    let closed = row.close_time.is_some();
    // Present even when empty, as earlier Sundial builds listed them (and SDKs accept).
    let mut search_attributes =
        SearchAttributes::decode(row.search_attributes.as_slice()).unwrap_or_default();
    annotate(&mut search_attributes, custom);
    let search_attributes = Some(search_attributes);
    let parent_namespace_id = if row.parent_workflow_id.is_some() {
        namespace_id.to_string()
    } else {
        String::new()
    };
    WorkflowExecutionInfo {
        execution: Some(WorkflowExecution {
            workflow_id: row.workflow_id,
            run_id: row.run_id,
        }),
        r#type: Some(WorkflowType {
            name: row.workflow_type,
        }),
        start_time: timestamp(row.start_time),
        close_time: row.close_time.and_then(timestamp),
        status: row.status as i32,
        history_length: if closed {
            row.history_length.unwrap_or_default()
        } else {
            0
        },
        history_size_bytes: row.history_size_bytes.unwrap_or_default(),
        state_transition_count: row.state_transition_count.unwrap_or_default(),
        execution_time: timestamp(row.execution_time),
        execution_duration: row.execution_duration.and_then(duration),
        memo: Some(Memo::decode(row.memo.as_slice()).unwrap_or_default()),
        search_attributes,
        task_queue: row.task_queue,
        parent_namespace_id,
        parent_execution: match (row.parent_workflow_id, row.parent_run_id) {
            (Some(workflow_id), Some(run_id)) => Some(WorkflowExecution {
                workflow_id,
                run_id,
            }),
            _ => None,
        },
        root_execution: Some(WorkflowExecution {
            workflow_id: row.root_workflow_id,
            run_id: row.root_run_id,
        }),
        ..Default::default()
    }
}
