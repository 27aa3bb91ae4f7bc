//! Temporal's list-query language, as its 1.32 SQL visibility accepts and refuses it: each row
//! is a query and either the canonical filter it parses to or Temporal's error message.

use std::collections::HashMap;

use sundial_visibility::{Filter, SaType, parse_query};

const HIDDEN: &str = "TemporalNamespaceDivision IS NULL";

fn custom() -> HashMap<String, SaType> {
    [
        ("CustKw", SaType::Keyword),
        ("CustInt", SaType::Int),
        ("CustBool", SaType::Bool),
        ("CustDouble", SaType::Double),
        ("CustDt", SaType::Datetime),
        ("CustText", SaType::Text),
        ("CustKwl", SaType::KeywordList),
        ("python-test-keyword", SaType::Keyword),
    ]
    .into_iter()
    .map(|(name, ty)| (name.to_string(), ty))
    .collect()
}

/// Queries that parse, with the filter they mean (the hidden-division clause left out).
const VALID: &[(&str, &str)] = &[
    ("WorkflowId = 'x'", "WorkflowId = \"x\""),
    ("WorkflowId = \"x\"", "WorkflowId = \"x\""),
    ("`WorkflowId` = 'x'", "WorkflowId = \"x\""),
    ("WorkflowId != 'x'", "WorkflowId <> \"x\""),
    ("WorkflowId <> 'x'", "WorkflowId <> \"x\""),
    (
        "WorkflowType = 'A' and WorkflowId = 'b'",
        "(WorkflowType = \"A\" AND WorkflowId = \"b\")",
    ),
    (
        "WorkflowType = 'A' OR WorkflowType = 'B' AND RunId = 'r'",
        "(WorkflowType = \"A\" OR (WorkflowType = \"B\" AND RunId = \"r\"))",
    ),
    (
        "(WorkflowType = 'A' OR WorkflowType = 'B') AND RunId = 'r'",
        "((WorkflowType = \"A\" OR WorkflowType = \"B\") AND RunId = \"r\")",
    ),
    ("NOT (CustKw = 'red')", "CustKw <> \"red\""),
    (
        "NOT (CustKw = 'red' AND CustInt > 3)",
        "(CustKw <> \"red\" OR CustInt <= 3)",
    ),
    (
        "NOT (CustKw = 'a' OR NOT CustInt < 3)",
        "(CustKw <> \"a\" AND CustInt < 3)",
    ),
    ("not CustKw is null", "CustKw IS NOT NULL"),
    ("CustKw IS NULL", "CustKw IS NULL"),
    ("CustKw is not null", "CustKw IS NOT NULL"),
    ("WorkflowId STARTS_WITH 'P'", "WorkflowId STARTS_WITH \"P\""),
    ("WorkflowId starts_with 'P'", "WorkflowId STARTS_WITH \"P\""),
    (
        "WorkflowId NOT STARTS_WITH 'P'",
        "WorkflowId NOT STARTS_WITH \"P\"",
    ),
    (
        "NOT WorkflowId STARTS_WITH 'P'",
        "WorkflowId NOT STARTS_WITH \"P\"",
    ),
    ("CustInt BETWEEN 2 AND 9", "CustInt BETWEEN 2 AND 9"),
    ("CustInt NOT BETWEEN 2 AND 9", "CustInt NOT BETWEEN 2 AND 9"),
    ("CustInt = 5.0", "CustInt = 5.0"),
    ("CustInt >= -3", "CustInt >= -3"),
    ("CustDouble = 1", "CustDouble = 1.0"),
    ("CustDouble < 1.5", "CustDouble < 1.5"),
    ("CustBool = true", "CustBool = 1"),
    ("CustBool != FALSE", "CustBool <> 0"),
    ("CustBool IN (true, false)", "CustBool IN (1, 0)"),
    ("CustKw IN ('a', 'b')", "CustKw IN (\"a\", \"b\")"),
    ("CustKw NOT IN ('a')", "CustKw NOT IN (\"a\")"),
    ("NOT CustKw IN ('a')", "CustKw NOT IN (\"a\")"),
    ("CustKwl = 'y'", "CustKwl = \"y\""),
    ("CustKwl != 'y'", "CustKwl <> \"y\""),
    ("CustKwl IN ('x', 'z')", "CustKwl IN (\"x\", \"z\")"),
    ("CustText = 'hello world'", "CustText MATCHES hello|world"),
    ("CustText != 'Brave'", "CustText NOT MATCHES brave"),
    (
        "CustDt > '2024-01-02T03:04:05Z'",
        "CustDt > 1704164645000000000",
    ),
    (
        "CustDt = '2024-01-02T05:04:05.5+02:00'",
        "CustDt = 1704164645500000000",
    ),
    (
        "StartTime > 1704164645000000000",
        "StartTime > 1704164645000000000",
    ),
    ("CloseTime IS NULL", "CloseTime IS NULL"),
    (
        "StartTime BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-02T00:00:00Z'",
        "StartTime BETWEEN 1704067200000000000 AND 1704153600000000000",
    ),
    ("ExecutionStatus = 'Running'", "ExecutionStatus = 1"),
    (
        "ExecutionStatus = 'WORKFLOW_EXECUTION_STATUS_COMPLETED'",
        "ExecutionStatus = 2",
    ),
    ("ExecutionStatus = 3", "ExecutionStatus = 3"),
    (
        "ExecutionStatus IN ('Running', 'TimedOut', 5)",
        "ExecutionStatus IN (1, 7, 5)",
    ),
    (
        "ExecutionStatus != 'ContinuedAsNew'",
        "ExecutionStatus <> 6",
    ),
    (
        "ExecutionDuration > '10m'",
        "ExecutionDuration > 600000000000",
    ),
    (
        "ExecutionDuration < '01:00:00'",
        "ExecutionDuration < 3600000000000",
    ),
    ("ExecutionDuration > 5", "ExecutionDuration > 5"),
    ("HistoryLength > 0", "HistoryLength > 0"),
    ("ScheduleId = 's'", "WorkflowId = \"s\""),
    ("TemporalScheduleId = 's'", "WorkflowId = \"s\""),
    ("ChangeVersion = 'v1'", "TemporalChangeVersion = \"v1\""),
    ("BuildIds = 'unversioned'", "BuildIds = \"unversioned\""),
    ("`python-test-keyword` = 'v'", "python-test-keyword = \"v\""),
    (
        "TaskQueue = 'q' AND ParentWorkflowId IS NULL",
        "(TaskQueue = \"q\" AND ParentWorkflowId IS NULL)",
    ),
    ("WorkflowId = 'it''s'", "WorkflowId = \"it's\""),
    ("WorkflowId = 'back\\'slash'", "WorkflowId = \"back'slash\""),
    ("((WorkflowId = 'x'))", "WorkflowId = \"x\""),
];

/// Queries Temporal refuses, with its message.
const INVALID: &[(&str, &str)] = &[
    ("Foo = 'x'", "invalid query: invalid search attribute: Foo"),
    (
        "workflowid = 'x'",
        "invalid query: invalid search attribute: workflowid",
    ),
    (
        "WorkflowId = ",
        "invalid query: malformed SQL query: syntax error at position 40",
    ),
    (
        "WorkflowId = 'x' AND",
        "invalid query: malformed SQL query: syntax error at position 47",
    ),
    (
        "WorkflowId = 'x",
        "invalid query: malformed SQL query: syntax error at position 42",
    ),
    (
        "(WorkflowId = 'x'",
        "invalid query: malformed SQL query: syntax error at position 44",
    ),
    (
        "WorkflowId = 'x' ORDER BY StartTime",
        "invalid query: operation is not supported: 'ORDER BY' clause",
    ),
    (
        "ORDER BY StartTime DESC",
        "invalid query: operation is not supported: 'ORDER BY' clause",
    ),
    (
        "WorkflowId = 'x' LIMIT 1",
        "invalid query: operation is not supported: 'LIMIT' clause",
    ),
    (
        "WorkflowId LIKE 'x%'",
        "invalid query: operation is not supported: operator 'LIKE' not supported for Keyword type search attribute 'WorkflowId'",
    ),
    (
        "CustKwl STARTS_WITH 'x'",
        "invalid query: operation is not supported: operator 'STARTS_WITH' not supported for KeywordList type search attribute 'CustKwl'",
    ),
    (
        "CustKwl BETWEEN 'a' AND 'b'",
        "invalid query: operation is not supported: operator 'BETWEEN' not supported for KeywordList type search attribute 'CustKwl'",
    ),
    (
        "CustKwl > 'a'",
        "invalid query: operation is not supported: operator '>' not supported for KeywordList type search attribute 'CustKwl'",
    ),
    (
        "CustText > 'a'",
        "invalid query: operation is not supported: operator '>' not supported for Text type search attribute 'CustText'",
    ),
    (
        "CustText IN ('a')",
        "invalid query: operation is not supported: operator 'IN' not supported for Text type search attribute 'CustText'",
    ),
    (
        "CustInt STARTS_WITH '1'",
        "invalid query: operation is not supported: operator 'STARTS_WITH' not supported for Int type search attribute 'CustInt'",
    ),
    (
        "CustKw = red",
        "invalid query: operation is not supported: column name on the right side of comparison expression (did you forget to quote \"red\"?)",
    ),
    (
        "CustInt = 'abc'",
        "invalid query: invalid expression: invalid value type for search attribute CustInt of type Int: \"abc\" (type: string)",
    ),
    (
        "WorkflowId = 1",
        "invalid query: invalid expression: invalid value type for search attribute WorkflowId of type Keyword: 1 (type: int64)",
    ),
    (
        "CustBool = 'true'",
        "invalid query: invalid expression: invalid value type for search attribute CustBool of type Bool: \"true\" (type: string)",
    ),
    (
        "CustDouble = 'x'",
        "invalid query: invalid expression: invalid value type for search attribute CustDouble of type Double: \"x\" (type: string)",
    ),
    (
        "CustBool BETWEEN true AND false",
        "invalid query: invalid expression: cannot do range condition on search attribute 'CustBool' of type Bool",
    ),
    (
        "CustDt > '2024-01-01'",
        "invalid query: invalid expression: unable to parse datetime '2024-01-01'",
    ),
    (
        "StartTime > '2020-01-01 00:00:00'",
        "invalid query: invalid expression: unable to parse datetime '2020-01-01 00:00:00'",
    ),
    (
        "ExecutionStatus = 'Bogus'",
        "invalid query: invalid expression: invalid ExecutionStatus value 'Bogus'",
    ),
    (
        "ExecutionStatus = 'running'",
        "invalid query: invalid expression: invalid ExecutionStatus value 'running'",
    ),
    (
        "CustText = ''",
        "invalid query: invalid expression: no tokens found filtering on Text type search attribute CustText",
    ),
    (
        "CustText = '!!'",
        "invalid query: invalid expression: no tokens found filtering on Text type search attribute CustText",
    ),
    (
        "ExecutionDuration > 'soon'",
        "invalid query: invalid expression: invalid value type for search attribute ExecutionDuration of type Int: \"soon\" (type: string)",
    ),
    (
        "Memo = 'x'",
        "invalid query: invalid search attribute: Memo",
    ),
    (
        "NamespaceId = 'x'",
        "invalid query: invalid search attribute: NamespaceId",
    ),
];

/// Count queries: whether they group by status, or Temporal's refusal.
const GROUPS: &[(&str, Result<bool, &str>)] = &[
    ("", Ok(false)),
    ("TaskQueue = 'q'", Ok(false)),
    ("GROUP BY ExecutionStatus", Ok(true)),
    ("TaskQueue = 'q' group by ExecutionStatus", Ok(true)),
    (
        "GROUP BY WorkflowType",
        Err(
            "invalid query: operation is not supported: 'GROUP BY' clause is not supported for search attribute WorkflowType",
        ),
    ),
    (
        "GROUP BY ExecutionStatus, WorkflowType",
        Err(
            "invalid query: operation is not supported: 'GROUP BY' clause supports only a single field",
        ),
    ),
];

#[test]
fn valid_queries_parse_to_their_filters() {
    let custom = custom();
    for (query, expected) in VALID {
        let parsed = parse_query(query, &custom).unwrap_or_else(|error| panic!("{query}: {error}"));
        let Filter::And(mut parts) = parsed.filter else {
            panic!("{query}: the hidden division is not ANDed on");
        };
        assert_eq!(
            parts.pop().map(|part| part.to_string()).as_deref(),
            Some(HIDDEN),
            "{query}"
        );
        let text = match parts.as_slice() {
            [one] => one.to_string(),
            _ => Filter::And(parts).to_string(),
        };
        assert_eq!(text, *expected, "{query}");
    }
    assert!(VALID.len() + INVALID.len() + GROUPS.len() >= 60);
}

#[test]
fn invalid_queries_give_temporals_messages() {
    let custom = custom();
    for (query, message) in INVALID {
        match parse_query(query, &custom) {
            Ok(parsed) => panic!("{query}: parsed as {}", parsed.filter),
            Err(error) => assert_eq!(error.0, *message, "{query}"),
        }
    }
}

#[test]
fn counts_group_by_execution_status_only() {
    let custom = custom();
    for (query, expected) in GROUPS {
        let result = parse_query(query, &custom).and_then(|parsed| parsed.group_by_status());
        assert_eq!(
            result.map_err(|error| error.0),
            expected.map_err(str::to_string),
            "{query}"
        );
    }
}

#[test]
fn the_hidden_division_is_left_alone_when_the_query_names_it() {
    let parsed = parse_query("TemporalNamespaceDivision = 'TemporalScheduler'", &custom()).unwrap();
    assert_eq!(
        parsed.filter.to_string(),
        "TemporalNamespaceDivision = \"TemporalScheduler\""
    );
    let parsed = parse_query("", &custom()).unwrap();
    assert_eq!(parsed.filter.to_string(), HIDDEN);
}

#[test]
fn a_custom_attribute_shadows_nothing_of_the_system_but_is_found_first() {
    let mut custom = custom();
    custom.insert("Color".into(), SaType::Keyword);
    let parsed = parse_query("Color = 'x'", &custom).unwrap();
    assert!(parsed.filter.to_string().starts_with("(Color = \"x\""));
    assert!(parse_query("Color = 'x'", &HashMap::new()).is_err());
}
