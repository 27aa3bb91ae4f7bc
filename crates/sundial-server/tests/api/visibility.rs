//! List and count queries through the API: Temporal's query language over the runs of a
//! namespace, with the search attributes a workflow upserted.

use std::collections::HashMap;

use sundial_proto::api::command::v1::{
    UpsertWorkflowSearchAttributesCommandAttributes, command::Attributes,
};
use sundial_proto::api::common::v1::{Payload, SearchAttributes, WorkflowType};
use sundial_proto::api::enums::v1::{CommandType, WorkflowExecutionStatus};
use sundial_proto::api::filter::v1::{StatusFilter, WorkflowTypeFilter};
use sundial_proto::api::workflowservice::v1 as ws;
use tonic::Code;

use crate::common::*;

fn json(text: &str) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: text.as_bytes().to_vec(),
        ..Default::default()
    }
}

async fn list(client: &mut Client, query: &str) -> Vec<String> {
    client
        .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: query.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("{query}: {status}"))
        .into_inner()
        .executions
        .into_iter()
        .map(|info| info.execution.unwrap().workflow_id)
        .collect()
}

#[tokio::test]
async fn list_and_count_with_queries_over_upserted_attributes() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    for (workflow_id, workflow_type) in [("vis-1", "TypeA"), ("vis-2", "TypeB"), ("vis-3", "TypeA")]
    {
        let mut request = start_request(workflow_id, "q-vis");
        request.workflow_type = Some(WorkflowType {
            name: workflow_type.into(),
        });
        client.start_workflow_execution(request).await.unwrap();
        // Start times have millisecond precision; runs started in the same millisecond are
        // ordered by run id, so the starts are kept apart to give a known order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Every run is listed at once after its start returned: open ones, newest first.
    assert_eq!(list(&mut client, "").await, vec!["vis-3", "vis-2", "vis-1"]);

    // The first task to arrive upserts a version marker and completes its workflow.
    let task = poll_workflow_task(&mut client, "q-vis").await;
    let done = task.workflow_execution.clone().unwrap().workflow_id;
    let upsert = command(
        CommandType::UpsertWorkflowSearchAttributes,
        Attributes::UpsertWorkflowSearchAttributesCommandAttributes(
            UpsertWorkflowSearchAttributesCommandAttributes {
                search_attributes: Some(SearchAttributes {
                    indexed_fields: HashMap::from([(
                        "TemporalChangeVersion".to_string(),
                        json("[\"fix-1\", \"fix-2\"]"),
                    )]),
                }),
            },
        ),
    );
    complete(
        &mut client,
        &task.task_token,
        vec![upsert, complete_workflow("ok")],
    )
    .await
    .unwrap();

    let open: Vec<String> = ["vis-3", "vis-2", "vis-1"]
        .into_iter()
        .filter(|id| *id != done)
        .map(String::from)
        .collect();
    assert_eq!(list(&mut client, "ExecutionStatus = 'Running'").await, open);
    assert_eq!(
        list(&mut client, "ExecutionStatus = 'Completed'").await,
        vec![done.clone()]
    );
    assert_eq!(
        list(&mut client, "TemporalChangeVersion = 'fix-2'").await,
        vec![done.clone()]
    );
    assert_eq!(
        list(&mut client, "TemporalChangeVersion = 'fix-3'").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(
            &mut client,
            "WorkflowType = 'TypeA' AND WorkflowId STARTS_WITH 'vis-'"
        )
        .await
        .len(),
        2
    );
    // Closed runs come after the open ones.
    let everything = list(&mut client, "").await;
    assert_eq!(everything.last(), Some(&done));

    let count = client
        .count_workflow_executions(ws::CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: "WorkflowId STARTS_WITH 'vis-' GROUP BY ExecutionStatus".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count.count, 3);
    let groups: Vec<(String, i64)> = count
        .groups
        .iter()
        .map(|group| {
            let value = &group.group_values[0];
            assert_eq!(value.metadata["type"], b"Keyword".to_vec());
            (String::from_utf8(value.data.clone()).unwrap(), group.count)
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("\"Running\"".to_string(), 2),
            ("\"Completed\"".to_string(), 1)
        ]
    );
    let plain = client
        .count_workflow_executions(ws::CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: "WorkflowType = 'TypeB'".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plain.count, plain.groups.len()), (1, 0));

    // Pages of one: a token whenever the page is full, then an empty last page.
    let mut seen = Vec::new();
    let mut token = Vec::new();
    for _ in 0..4 {
        let page = client
            .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
                namespace: "default".into(),
                page_size: 1,
                next_page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(
            page.executions
                .into_iter()
                .map(|info| info.execution.unwrap().workflow_id),
        );
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, everything);
    assert!(token.is_empty());

    // The legacy lists.
    let open_a = client
        .list_open_workflow_executions(ws::ListOpenWorkflowExecutionsRequest {
            namespace: "default".into(),
            filters: Some(
                ws::list_open_workflow_executions_request::Filters::TypeFilter(
                    WorkflowTypeFilter {
                        name: "TypeB".into(),
                    },
                ),
            ),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open_a.executions.len(), usize::from(done != "vis-2"));
    let closed = client
        .list_closed_workflow_executions(ws::ListClosedWorkflowExecutionsRequest {
            namespace: "default".into(),
            filters: Some(
                ws::list_closed_workflow_executions_request::Filters::StatusFilter(StatusFilter {
                    status: WorkflowExecutionStatus::Completed as i32,
                }),
            ),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let info = &closed.executions[0];
    assert_eq!(info.execution.as_ref().unwrap().workflow_id, done);
    assert!(info.close_time.is_some() && info.execution_duration.is_some());
    // Started, task scheduled, started, completed, upserted, completed.
    assert_eq!(info.history_length, 6);
    assert_eq!(info.root_execution.as_ref().unwrap().workflow_id, done);
    let listed_attributes = info.search_attributes.as_ref().unwrap();
    assert!(
        listed_attributes
            .indexed_fields
            .contains_key("TemporalChangeVersion")
    );
}

#[tokio::test]
async fn bad_queries_and_tokens_are_refused_with_temporals_messages() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    for (query, message) in [
        ("Foo = 'x'", "invalid query: invalid search attribute: Foo"),
        (
            "WorkflowId = ",
            "invalid query: malformed SQL query: syntax error at position 40",
        ),
        (
            "WorkflowId = 'x' ORDER BY StartTime",
            "invalid query: operation is not supported: 'ORDER BY' clause",
        ),
    ] {
        let status = client
            .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
                namespace: "default".into(),
                query: query.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, message)
        );
    }
    let status = client
        .count_workflow_executions(ws::CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: "GROUP BY WorkflowType".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = client
        .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            next_page_token: b"\xff\xffnot a token".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "Invalid NextPageToken.")
    );
    let info = client
        .get_system_info(ws::GetSystemInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.capabilities.unwrap().count_group_by_execution_status);
}
