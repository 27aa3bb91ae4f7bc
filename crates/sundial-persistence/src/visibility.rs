//! The visibility store: one row per run in `executions_visibility` (the system attributes as
//! columns) and its search attributes as plain values in `executions_visibility_values`, both
//! written in the same transaction as the run's state. List queries arrive as a typed
//! [`Filter`] and are translated here into one SQL text that all three dialects run (only the
//! placeholders differ), so every backend gives the same answers.

use async_trait::async_trait;
use sundial_common::Result;
use sundial_visibility::index::IndexedValue;
use sundial_visibility::{Atom, CmpOp, Column, Field, Filter, SaType, Test, Value};

/// The visibility row of a run: what lists show and filter on. Times are Unix nanoseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisibilityRow {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub status: i64,
    pub start_time: i64,
    pub execution_time: i64,
    /// `None` while the run is open; so are the four fields after it.
    pub close_time: Option<i64>,
    pub execution_duration: Option<i64>,
    pub history_length: Option<i64>,
    pub history_size_bytes: Option<i64>,
    pub state_transition_count: Option<i64>,
    pub parent_workflow_id: Option<String>,
    pub parent_run_id: Option<String>,
    pub root_workflow_id: String,
    pub root_run_id: String,
    /// Encoded `Memo` and `SearchAttributes` (empty when the run has none).
    pub memo: Vec<u8>,
    pub search_attributes: Vec<u8>,
}

impl VisibilityRow {
    /// The first sort key: open runs first, then the latest closed.
    pub fn sort_time(&self) -> i64 {
        self.close_time.unwrap_or(i64::MAX)
    }

    pub fn cursor(&self) -> VisibilityCursor {
        VisibilityCursor {
            sort_time: self.sort_time(),
            start_time: self.start_time,
            run_id: self.run_id.clone(),
        }
    }
}

/// A run's visibility change, part of its write: the row, and its search attributes' values
/// when those changed (`None` keeps the stored ones).
#[derive(Debug, Clone)]
pub struct VisibilityWrite {
    pub row: VisibilityRow,
    pub values: Option<Vec<IndexedValue>>,
}

/// Where a page of a list ends: the sort key of its last row. The next page starts strictly
/// after it, so rows written meanwhile do not shift pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityCursor {
    pub sort_time: i64,
    pub start_time: i64,
    pub run_id: String,
}

/// List queries over the runs of a namespace, in Temporal's order: open runs first (newest
/// start first), then closed ones (newest close first), run id breaking ties.
#[async_trait]
pub trait VisibilityStore: Send + Sync + 'static {
    async fn list_visibility(
        &self,
        namespace_id: &str,
        filter: &Filter,
        after: Option<VisibilityCursor>,
        page_size: usize,
    ) -> Result<Vec<VisibilityRow>>;

    async fn count_visibility(&self, namespace_id: &str, filter: &Filter) -> Result<i64>;

    /// Counts by `ExecutionStatus`, in status order, groups with no run left out.
    async fn count_visibility_by_status(
        &self,
        namespace_id: &str,
        filter: &Filter,
    ) -> Result<Vec<(i64, i64)>>;
}

/// A parameter of a translated statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlParam {
    Int(i64),
    Double(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `?` (SQLite, MySQL).
    Question,
    /// `$1`, `$2`, ... (PostgreSQL).
    Dollar,
}

#[derive(Debug)]
pub(crate) struct Sql {
    pub text: String,
    pub params: Vec<SqlParam>,
}

/// The columns every read selects, in the order [`VisibilityRow`] is read back.
pub(crate) const ROW_COLUMNS: &str = "workflow_id, run_id, workflow_type, task_queue, status, start_time, \
    execution_time, close_time, execution_duration, history_length, history_size_bytes, \
    state_transition_count, parent_workflow_id, parent_run_id, root_workflow_id, root_run_id, memo, \
    search_attributes";

/// The columns of an insert: [`ROW_COLUMNS`] with the namespace and the sort key first.
pub(crate) const INSERT_COLUMNS: &str = "namespace_id, sort_time, workflow_id, run_id, workflow_type, \
    task_queue, status, start_time, execution_time, close_time, execution_duration, history_length, \
    history_size_bytes, state_transition_count, parent_workflow_id, parent_run_id, root_workflow_id, \
    root_run_id, memo, search_attributes";

/// The columns an existing row's upsert replaces (all but the key).
pub(crate) const UPDATED_COLUMNS: [&str; 18] = [
    "sort_time",
    "workflow_id",
    "workflow_type",
    "task_queue",
    "status",
    "start_time",
    "execution_time",
    "close_time",
    "execution_duration",
    "history_length",
    "history_size_bytes",
    "state_transition_count",
    "parent_workflow_id",
    "parent_run_id",
    "root_workflow_id",
    "root_run_id",
    "memo",
    "search_attributes",
];

struct Builder {
    style: Placeholders,
    text: String,
    params: Vec<SqlParam>,
}

impl Builder {
    fn new(style: Placeholders) -> Builder {
        Builder {
            style,
            text: String::new(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn param(&mut self, param: SqlParam) {
        self.params.push(param);
        match self.style {
            Placeholders::Question => self.text.push('?'),
            Placeholders::Dollar => self.text.push_str(&format!("${}", self.params.len())),
        }
    }

    fn value(&mut self, value: &Value) {
        self.param(match value {
            Value::Int(int) => SqlParam::Int(*int),
            Value::Double(float) => SqlParam::Double(*float),
            Value::Text(text) => SqlParam::Text(text.clone()),
        });
    }

    fn values(&mut self, values: &[Value]) {
        self.push("(");
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                self.push(", ");
            }
            self.value(value);
        }
        self.push(")");
    }

    fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

fn column_sql(column: Column) -> &'static str {
    match column {
        Column::WorkflowId => "workflow_id",
        Column::RunId => "run_id",
        Column::WorkflowType => "workflow_type",
        Column::TaskQueue => "task_queue",
        Column::ExecutionStatus => "status",
        Column::StartTime => "start_time",
        Column::ExecutionTime => "execution_time",
        Column::CloseTime => "close_time",
        Column::ExecutionDuration => "execution_duration",
        Column::HistoryLength => "history_length",
        Column::HistorySizeBytes => "history_size_bytes",
        Column::StateTransitionCount => "state_transition_count",
        Column::ParentWorkflowId => "parent_workflow_id",
        Column::ParentRunId => "parent_run_id",
        Column::RootWorkflowId => "root_workflow_id",
        Column::RootRunId => "root_run_id",
    }
}

/// The smallest string greater than every string starting with `prefix` (bytewise, which is
/// code-point order in UTF-8), or `None` when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `expression` tested by `test`, for a single-valued expression (a column, or the value
/// column of a search attribute's row). `None` for the two tests that are not per value.
fn value_test(builder: &mut Builder, expression: &str, test: &Test) {
    match test {
        Test::Cmp(op, value) => {
            builder.push(&format!("{expression} {} ", op.sql()));
            builder.value(value);
        }
        Test::In { values, negated } => {
            builder.push(&format!(
                "{expression} {}IN ",
                if *negated { "NOT " } else { "" }
            ));
            builder.values(values);
        }
        Test::Between { low, high, negated } => {
            builder.push(&format!(
                "{expression} {}BETWEEN ",
                if *negated { "NOT " } else { "" }
            ));
            builder.value(low);
            builder.push(" AND ");
            builder.value(high);
        }
        Test::StartsWith { prefix, negated } => {
            let end = prefix_end(prefix);
            builder.push(if *negated { "NOT (" } else { "(" });
            builder.push(&format!("{expression} >= "));
            builder.param(SqlParam::Text(prefix.clone()));
            if let Some(end) = end {
                builder.push(&format!(" AND {expression} < "));
                builder.param(SqlParam::Text(end));
            }
            builder.push(")");
        }
        Test::Null { negated } => {
            builder.push(&format!(
                "{expression} IS {}NULL",
                if *negated { "NOT " } else { "" }
            ));
        }
        Test::Tokens { .. } => unreachable!("text tests are on attributes"),
    }
}

/// Which value column an attribute's test compares.
fn value_column(ty: SaType, test: &Test) -> &'static str {
    let fractional =
        |values: &[&Value]| values.iter().any(|value| matches!(value, Value::Double(_)));
    let values: Vec<&Value> = match test {
        Test::Cmp(_, value) => vec![value],
        Test::In { values, .. } => values.iter().collect(),
        Test::Between { low, high, .. } => vec![low, high],
        _ => Vec::new(),
    };
    match ty {
        SaType::Keyword | SaType::KeywordList | SaType::Text => "value_text",
        SaType::Double => "value_double",
        SaType::Int if fractional(&values) => "value_double",
        SaType::Int | SaType::Bool | SaType::Datetime => "value_int",
    }
}

/// `run_id [NOT] IN (the runs of this namespace with a value of `name` [that passes])`.
fn runs_with(
    builder: &mut Builder,
    namespace_id: &str,
    name: &str,
    negated: bool,
    token: Option<bool>,
    condition: impl FnOnce(&mut Builder),
) {
    builder.push(if negated {
        "run_id NOT IN ("
    } else {
        "run_id IN ("
    });
    builder.push("SELECT run_id FROM executions_visibility_values WHERE namespace_id = ");
    builder.param(SqlParam::Text(namespace_id.to_string()));
    builder.push(" AND name = ");
    builder.param(SqlParam::Text(name.to_string()));
    if let Some(token) = token {
        builder.push(if token {
            " AND token = 1"
        } else {
            " AND token = 0"
        });
    }
    condition(builder);
    builder.push(")");
}

fn atom(builder: &mut Builder, namespace_id: &str, atom: &Atom) {
    let (name, ty) = match &atom.field {
        Field::Column(column) => {
            value_test(builder, column_sql(*column), &atom.test);
            return;
        }
        Field::Attribute { name, ty } => (name.as_str(), *ty),
    };
    let column = value_column(ty, &atom.test);
    match &atom.test {
        Test::Null { negated } => runs_with(builder, namespace_id, name, !negated, None, |_| {}),
        Test::Tokens { tokens, negated } => {
            let tokens: Vec<Value> = tokens.iter().cloned().map(Value::Text).collect();
            let matching = |builder: &mut Builder| {
                builder.push(" AND value_text IN ");
                builder.values(&tokens);
            };
            if *negated {
                builder.push("(");
                runs_with(builder, namespace_id, name, false, Some(false), |_| {});
                builder.push(" AND ");
                runs_with(builder, namespace_id, name, true, Some(true), matching);
                builder.push(")");
            } else {
                runs_with(builder, namespace_id, name, false, Some(true), matching);
            }
        }
        // A list that contains none of the values: it has the attribute, and no element
        // matches.
        Test::Cmp(CmpOp::Ne, value) if ty == SaType::KeywordList => {
            let positive = Test::Cmp(CmpOp::Eq, value.clone());
            contains_none(builder, namespace_id, name, column, &positive);
        }
        Test::In {
            values,
            negated: true,
        } if ty == SaType::KeywordList => {
            let positive = Test::In {
                values: values.clone(),
                negated: false,
            };
            contains_none(builder, namespace_id, name, column, &positive);
        }
        test => runs_with(builder, namespace_id, name, false, Some(false), |builder| {
            builder.push(" AND ");
            value_test(builder, column, test);
        }),
    }
}

fn contains_none(
    builder: &mut Builder,
    namespace_id: &str,
    name: &str,
    column: &str,
    positive: &Test,
) {
    builder.push("(");
    runs_with(builder, namespace_id, name, false, Some(false), |_| {});
    builder.push(" AND ");
    runs_with(builder, namespace_id, name, true, Some(false), |builder| {
        builder.push(" AND ");
        value_test(builder, column, positive);
    });
    builder.push(")");
}

fn filter(builder: &mut Builder, namespace_id: &str, filter: &Filter) {
    match filter {
        Filter::All => builder.push("1 = 1"),
        Filter::Atom(one) => atom(builder, namespace_id, one),
        Filter::And(parts) | Filter::Or(parts) => {
            let word = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            builder.push("(");
            for (index, part) in parts.iter().enumerate() {
                if index > 0 {
                    builder.push(word);
                }
                self::filter(builder, namespace_id, part);
            }
            builder.push(")");
        }
    }
}

fn where_clause(builder: &mut Builder, namespace_id: &str, query: &Filter) {
    builder.push(" WHERE namespace_id = ");
    builder.param(SqlParam::Text(namespace_id.to_string()));
    builder.push(" AND ");
    filter(builder, namespace_id, query);
}

/// One page of a list, after `after`.
pub(crate) fn list_sql(
    style: Placeholders,
    namespace_id: &str,
    query: &Filter,
    after: Option<&VisibilityCursor>,
    page_size: usize,
) -> Sql {
    let mut builder = Builder::new(style);
    builder.push(&format!("SELECT {ROW_COLUMNS} FROM executions_visibility"));
    where_clause(&mut builder, namespace_id, query);
    if let Some(after) = after {
        builder.push(" AND (sort_time < ");
        builder.param(SqlParam::Int(after.sort_time));
        builder.push(" OR (sort_time = ");
        builder.param(SqlParam::Int(after.sort_time));
        builder.push(" AND (start_time < ");
        builder.param(SqlParam::Int(after.start_time));
        builder.push(" OR (start_time = ");
        builder.param(SqlParam::Int(after.start_time));
        builder.push(" AND run_id > ");
        builder.param(SqlParam::Text(after.run_id.clone()));
        builder.push("))))");
    }
    builder.push(" ORDER BY sort_time DESC, start_time DESC, run_id ASC LIMIT ");
    builder.param(SqlParam::Int(page_size as i64));
    builder.finish()
}

/// The count of the runs a filter matches, by status when `by_status`.
pub(crate) fn count_sql(
    style: Placeholders,
    namespace_id: &str,
    query: &Filter,
    by_status: bool,
) -> Sql {
    let mut builder = Builder::new(style);
    builder.push(if by_status {
        "SELECT status, COUNT(*) FROM executions_visibility"
    } else {
        "SELECT COUNT(*) FROM executions_visibility"
    });
    where_clause(&mut builder, namespace_id, query);
    if by_status {
        builder.push(" GROUP BY status ORDER BY status");
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn prefixes_end_at_the_next_code_point() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn a_query_becomes_one_statement_with_its_values_as_parameters() {
        let custom = HashMap::from([("CustKwl".to_string(), SaType::KeywordList)]);
        let query =
            sundial_visibility::parse_query("WorkflowType = 'A' AND CustKwl != 'x'", &custom)
                .unwrap();
        let sql = count_sql(Placeholders::Dollar, "ns", &query.filter, false);
        assert_eq!(
            sql.text,
            "SELECT COUNT(*) FROM executions_visibility WHERE namespace_id = $1 AND (workflow_type = $2 AND \
             (run_id IN (SELECT run_id FROM executions_visibility_values WHERE namespace_id = $3 AND name = $4 AND token = 0) AND \
             run_id NOT IN (SELECT run_id FROM executions_visibility_values WHERE namespace_id = $5 AND name = $6 AND token = 0 AND value_text = $7)) AND \
             run_id NOT IN (SELECT run_id FROM executions_visibility_values WHERE namespace_id = $8 AND name = $9))"
        );
        assert_eq!(sql.params.len(), 9);
        assert_eq!(sql.params[6], SqlParam::Text("x".into()));
    }
}
