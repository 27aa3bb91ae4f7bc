//! Custom search attributes through the API: registered, listed and removed per namespace with
//! `OperatorService`, checked where runs set them (start, upsert), and shown with their types.

use std::collections::HashMap;

use sundial_proto::api::command::v1::{
    UpsertWorkflowSearchAttributesCommandAttributes, command::Attributes,
};
use sundial_proto::api::common::v1::{Payload, SearchAttributes, WorkflowExecution};
use sundial_proto::api::enums::v1::{
    CommandType, EventType, IndexedValueType, WorkflowTaskFailedCause,
};
use sundial_proto::api::history::v1::history_event;
use sundial_proto::api::operatorservice::v1 as os;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::operatorservice::operator_service_client::OperatorServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::*;

type Operator = OperatorServiceClient<Channel>;

async fn operator(server: &TestServer) -> Operator {
    let address = server.server.as_ref().expect("running").address;
    OperatorServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connect operator")
}

fn json(text: &str) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: text.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn attributes(entries: &[(&str, &str)]) -> Option<SearchAttributes> {
    Some(SearchAttributes {
        indexed_fields: entries
            .iter()
            .map(|(name, value)| (name.to_string(), json(value)))
            .collect(),
    })
}

async fn add(
    operator: &mut Operator,
    namespace: &str,
    entries: &[(&str, IndexedValueType)],
) -> Result<(), tonic::Status> {
    operator
        .add_search_attributes(os::AddSearchAttributesRequest {
            namespace: namespace.into(),
            search_attributes: entries
                .iter()
                .map(|(name, ty)| (name.to_string(), *ty as i32))
                .collect(),
        })
        .await
        .map(|_| ())
}

async fn custom(operator: &mut Operator, namespace: &str) -> HashMap<String, i32> {
    operator
        .list_search_attributes(os::ListSearchAttributesRequest {
            namespace: namespace.into(),
        })
        .await
        .expect("list search attributes")
        .into_inner()
        .custom_attributes
}

fn invalid(result: Result<impl std::fmt::Debug, tonic::Status>, message: &str) {
    let status = result.expect_err(message);
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(status.message(), message);
}

#[tokio::test]
async fn operators_register_list_and_remove_custom_attributes_per_namespace() {
    use IndexedValueType as T;
    let mut server = TestServer::start().await;
    let mut operator = operator(&server).await;
    add(
        &mut operator,
        "default",
        &[("CustomerId", T::Keyword), ("Amount", T::Double)],
    )
    .await
    .unwrap();
    let listed = custom(&mut operator, "default").await;
    assert_eq!(
        listed,
        HashMap::from([
            ("CustomerId".to_string(), T::Keyword as i32),
            ("Amount".to_string(), T::Double as i32),
        ])
    );
    // Per namespace: the other one has none, and may give the same name another type.
    assert!(custom(&mut operator, "other").await.is_empty());
    add(&mut operator, "other", &[("CustomerId", T::Int)])
        .await
        .unwrap();
    assert_eq!(
        custom(&mut operator, "other").await["CustomerId"],
        T::Int as i32
    );
    // The namespace config shows the slots, as Temporal's SQL visibility keeps them.
    let described = server
        .client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let aliases = described.config.unwrap().custom_search_attribute_aliases;
    assert_eq!(aliases["Keyword01"], "CustomerId");
    assert_eq!(aliases["Double01"], "Amount");

    // A known name is skipped, whatever type is asked for.
    add(&mut operator, "default", &[("CustomerId", T::Int)])
        .await
        .unwrap();
    assert_eq!(
        custom(&mut operator, "default").await["CustomerId"],
        T::Keyword as i32
    );

    invalid(
        add(&mut operator, "default", &[]).await,
        "SearchAttributes are not set on request.",
    );
    invalid(
        add(&mut operator, "", &[("X", T::Keyword)]).await,
        "Namespace is not set on request.",
    );
    invalid(
        add(&mut operator, "default", &[("TemporalFoo", T::Keyword)]).await,
        "Search attribute TemporalFoo is reserved by system.",
    );
    invalid(
        add(&mut operator, "default", &[("ExecutionStatus", T::Keyword)]).await,
        "Search attribute ExecutionStatus is reserved by system.",
    );
    let four_bools: Vec<(String, IndexedValueType)> =
        (1..=4).map(|n| (format!("Flag{n}"), T::Bool)).collect();
    let four_bools: Vec<(&str, IndexedValueType)> =
        four_bools.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    invalid(
        add(&mut operator, "default", &four_bools).await,
        "Unable to create search attributes: cannot have more than 3 search attribute of type \
         Bool.",
    );
    assert!(
        !custom(&mut operator, "default").await.contains_key("Flag1"),
        "a failed request adds nothing"
    );
    let unavailable = add(&mut operator, "nope", &[("X", T::Keyword)])
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable}");

    // Removing: unknown names are ignored, system ones refused, custom ones freed.
    let remove = |names: &[&str]| os::RemoveSearchAttributesRequest {
        namespace: "default".into(),
        search_attributes: names.iter().map(|n| n.to_string()).collect(),
    };
    invalid(
        operator
            .remove_search_attributes(remove(&["WorkflowId"]))
            .await,
        "Unable to remove non-custom search attributes: WorkflowId.",
    );
    operator
        .remove_search_attributes(remove(&["Amount", "NeverAdded"]))
        .await
        .unwrap();
    assert_eq!(
        custom(&mut operator, "default").await,
        HashMap::from([("CustomerId".to_string(), T::Keyword as i32)])
    );

    // Registered attributes are durable.
    server.restart().await;
    let mut operator = self::operator(&server).await;
    assert_eq!(
        custom(&mut operator, "default").await,
        HashMap::from([("CustomerId".to_string(), T::Keyword as i32)])
    );
    assert_eq!(
        custom(&mut operator, "other").await["CustomerId"],
        T::Int as i32
    );
}

async fn describe_attributes(client: &mut Client, workflow_id: &str) -> HashMap<String, Payload> {
    client
        .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .workflow_execution_info
        .unwrap()
        .search_attributes
        .unwrap_or_default()
        .indexed_fields
}

async fn listed(client: &mut Client, query: &str) -> Result<Vec<String>, tonic::Status> {
    Ok(client
        .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: query.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .executions
        .into_iter()
        .map(|info| info.execution.unwrap().workflow_id)
        .collect())
}

fn upsert(entries: &[(&str, &str)]) -> sundial_proto::api::command::v1::Command {
    command(
        CommandType::UpsertWorkflowSearchAttributes,
        Attributes::UpsertWorkflowSearchAttributesCommandAttributes(
            UpsertWorkflowSearchAttributesCommandAttributes {
                search_attributes: attributes(entries),
            },
        ),
    )
}

#[tokio::test]
async fn runs_set_only_registered_attributes_of_their_type_and_show_them_typed() {
    use IndexedValueType as T;
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let mut operator = operator(&server).await;
    add(
        &mut operator,
        "default",
        &[
            ("CustInt", T::Int),
            ("CustKw", T::Keyword),
            ("CustKwl", T::KeywordList),
        ],
    )
    .await
    .unwrap();

    // Starts are checked at the frontend.
    for (entries, message) in [
        (
            vec![("NoSuchSA", "1")],
            "Namespace default has no mapping defined for search attribute NoSuchSA",
        ),
        (
            vec![("CustInt", "\"abc\"")],
            "invalid value for search attribute CustInt of type Int: abc",
        ),
        (
            vec![("CustKw", "[\"a\",\"b\"]")],
            "invalid value for search attribute CustKw of type Keyword: [a b]",
        ),
        (
            vec![("WorkflowType", "\"x\"")],
            "WorkflowType attribute can't be set in SearchAttributes",
        ),
    ] {
        let mut request = start_request("sa-bad", "q-sa");
        request.search_attributes = attributes(&entries);
        invalid(client.start_workflow_execution(request).await, message);
    }
    let mut request = start_request("sa-1", "q-sa");
    request.search_attributes = attributes(&[("CustInt", "5"), ("CustKw", "\"first\"")]);
    client.start_workflow_execution(request).await.unwrap();

    // Shown with the registered type, in the description, the list and the history.
    let shown = describe_attributes(&mut client, "sa-1").await;
    assert_eq!(shown["CustInt"].metadata["type"], b"Int");
    assert_eq!(shown["CustKw"].metadata["type"], b"Keyword");
    let listed_info = client
        .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: "CustInt = 5".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .executions;
    assert_eq!(listed_info.len(), 1);
    let fields = &listed_info[0]
        .search_attributes
        .as_ref()
        .unwrap()
        .indexed_fields;
    assert_eq!(fields["CustKw"].metadata["type"], b"Keyword");

    // An upsert of an unknown name fails the workflow task with BAD_SEARCH_ATTRIBUTES.
    let task = poll_workflow_task(&mut client, "q-sa").await;
    let started = &task.history.as_ref().unwrap().events[0];
    let Some(history_event::Attributes::WorkflowExecutionStartedEventAttributes(started)) =
        started.attributes.as_ref()
    else {
        panic!("the first event is the start");
    };
    assert_eq!(
        started.search_attributes.as_ref().unwrap().indexed_fields["CustInt"].metadata["type"],
        b"Int"
    );
    invalid(
        complete(
            &mut client,
            &task.task_token,
            vec![upsert(&[("NoSuchSA", "1")])],
        )
        .await,
        "BadSearchAttributes: Namespace default has no mapping defined for search attribute \
         NoSuchSA",
    );
    let run_id = task.workflow_execution.clone().unwrap().run_id;
    let events = history(&mut client, "sa-1", &run_id).await;
    let failed = events
        .iter()
        .find(|e| e.event_type == EventType::WorkflowTaskFailed as i32)
        .expect("a failed workflow task");
    let Some(history_event::Attributes::WorkflowTaskFailedEventAttributes(failed)) =
        failed.attributes.as_ref()
    else {
        unreachable!()
    };
    assert_eq!(
        failed.cause,
        WorkflowTaskFailedCause::BadSearchAttributes as i32
    );

    // The retried task removes one attribute (null) and sets a list.
    let task = poll_workflow_task(&mut client, "q-sa").await;
    complete(
        &mut client,
        &task.task_token,
        vec![upsert(&[("CustKw", "null"), ("CustKwl", "[\"x\",\"y\"]")])],
    )
    .await
    .unwrap();
    let shown = describe_attributes(&mut client, "sa-1").await;
    assert!(!shown.contains_key("CustKw"));
    assert_eq!(shown["CustKwl"].metadata["type"], b"KeywordList");
    assert_eq!(
        listed(
            &mut client,
            "CustKw IS NULL AND CustKwl = 'y' AND CustInt >= 5"
        )
        .await
        .unwrap(),
        vec!["sa-1"]
    );

    // A removed attribute is no longer shown nor queryable.
    operator
        .remove_search_attributes(os::RemoveSearchAttributesRequest {
            namespace: "default".into(),
            search_attributes: vec!["CustInt".into()],
        })
        .await
        .unwrap();
    assert!(
        !describe_attributes(&mut client, "sa-1")
            .await
            .contains_key("CustInt")
    );
    let error = listed(&mut client, "CustInt = 5").await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
}

#[tokio::test]
async fn start_dev_registers_search_attributes_in_every_namespace_it_creates() {
    let server = TestServer::start_with(|options| {
        options.search_attributes =
            HashMap::from([("Region".to_string(), IndexedValueType::Keyword as i32)]);
    })
    .await;
    let mut operator = operator(&server).await;
    for namespace in ["default", "other"] {
        assert_eq!(
            custom(&mut operator, namespace).await,
            HashMap::from([("Region".to_string(), IndexedValueType::Keyword as i32)]),
            "{namespace}"
        );
    }
}
