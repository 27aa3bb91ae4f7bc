//! From the untyped tree to a typed [`Filter`]: names resolved (custom attributes first, then
//! the system's), operators and values checked against the attribute's type, and every `NOT`
//! pushed down to the predicates (SQL's three-valued logic keeps `NOT (a = 1)` equal to
//! `a != 1`, both false where `a` is absent), so that a store translates each predicate alone.

use std::collections::HashMap;
use std::fmt;

use sundial_proto::api::enums::v1::WorkflowExecutionStatus;

use crate::QueryError;
use crate::attributes::{Column, SaType, System, system_attribute};
use crate::index::tokens;
use crate::parse::{Expr, Literal, Predicate, parse};
use crate::time::{parse_duration, parse_rfc3339};

/// What a predicate tests: a column of the visibility row, or an entry of the run's map.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Column(Column),
    Attribute { name: String, ty: SaType },
}

impl Field {
    pub fn name(&self) -> &str {
        match self {
            Field::Column(column) => column.name(),
            Field::Attribute { name, .. } => name,
        }
    }

    pub fn ty(&self) -> SaType {
        match self {
            Field::Column(column) => column.ty(),
            Field::Attribute { ty, .. } => *ty,
        }
    }
}

/// A typed value: Keyword and KeywordList values are text; Int, Bool (0, 1), Datetime (Unix
/// nanoseconds) and ExecutionStatus (its number) are integers; Double is a float (and so is a
/// fractional value given for an Int).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Double(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn parse(op: &str) -> CmpOp {
        match op {
            "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        }
    }

    fn negate(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// What a predicate asks of its field. Every test is false where the field is absent, except
/// `Null { negated: false }`. On a KeywordList, `Cmp(Eq)` and `In` mean "contains (any of)",
/// `Cmp(Ne)` and `In { negated }` "contains none of". On Text, `Tokens` means "contains any
/// of these tokens".
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Cmp(CmpOp, Value),
    In {
        values: Vec<Value>,
        negated: bool,
    },
    Between {
        low: Value,
        high: Value,
        negated: bool,
    },
    StartsWith {
        prefix: String,
        negated: bool,
    },
    Null {
        negated: bool,
    },
    Tokens {
        tokens: Vec<String>,
        negated: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub field: Field,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every run.
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Atom(Atom),
}

impl Filter {
    /// `TemporalNamespaceDivision IS NULL`: what hides the system's own runs (schedulers',
    /// batch jobs') from ordinary lists.
    pub fn no_namespace_division() -> Filter {
        Filter::Atom(Atom {
            field: Field::Attribute {
                name: "TemporalNamespaceDivision".into(),
                ty: SaType::Keyword,
            },
            test: Test::Null { negated: false },
        })
    }
}

/// A parsed list or count query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Filter,
    group_by: Vec<Field>,
}

impl Query {
    /// The `GROUP BY` of a count: `true` for `GROUP BY ExecutionStatus` (the only grouping SQL
    /// visibility allows), `false` for none.
    pub fn group_by_status(&self) -> Result<bool, QueryError> {
        match self.group_by.as_slice() {
            [] => Ok(false),
            [Field::Column(Column::ExecutionStatus)] => Ok(true),
            [field] => Err(unsupported(format!(
                "'GROUP BY' clause is not supported for search attribute {}",
                field.name()
            ))),
            _ => Err(unsupported(
                "'GROUP BY' clause supports only a single field",
            )),
        }
    }
}

fn unsupported(message: impl fmt::Display) -> QueryError {
    QueryError(format!(
        "invalid query: operation is not supported: {message}"
    ))
}

fn invalid(message: impl fmt::Display) -> QueryError {
    QueryError(format!("invalid query: invalid expression: {message}"))
}

/// Parses a query of a namespace whose custom attributes are `custom` (name → type). The
/// filter always hides runs that have `TemporalNamespaceDivision` (the system's own
/// workflows), unless the query names that attribute itself.
pub fn parse_query(query: &str, custom: &HashMap<String, SaType>) -> Result<Query, QueryError> {
    let parsed = parse(query)?;
    if parsed.order_by {
        return Err(unsupported("'ORDER BY' clause"));
    }
    if parsed.limit {
        return Err(unsupported("'LIMIT' clause"));
    }
    let mut resolver = Resolver {
        custom,
        division_named: false,
    };
    let mut filter = match &parsed.filter {
        Some(expr) => resolver.expr(expr, false)?,
        None => Filter::All,
    };
    let group_by = parsed
        .group_by
        .iter()
        .map(|name| resolver.field(name))
        .collect::<Result<Vec<_>, _>>()?;
    if !resolver.division_named {
        let hidden = Filter::no_namespace_division();
        filter = match filter {
            Filter::All => hidden,
            Filter::And(mut parts) => {
                parts.push(hidden);
                Filter::And(parts)
            }
            other => Filter::And(vec![other, hidden]),
        };
    }
    Ok(Query { filter, group_by })
}

struct Resolver<'a> {
    custom: &'a HashMap<String, SaType>,
    division_named: bool,
}

impl Resolver<'_> {
    fn field(&mut self, name: &str) -> Result<Field, QueryError> {
        let field = self.lookup(name).ok_or_else(|| {
            QueryError(format!("invalid query: invalid search attribute: {name}"))
        })?;
        if field.name() == "TemporalNamespaceDivision" {
            self.division_named = true;
        }
        Ok(field)
    }

    fn lookup(&self, name: &str) -> Option<Field> {
        if let Some(ty) = self.custom.get(name) {
            return Some(Field::Attribute {
                name: name.to_string(),
                ty: *ty,
            });
        }
        let system = |name: &str| {
            system_attribute(name).map(|found| match found {
                System::Column(column) => Field::Column(column),
                System::Predefined(name, ty) => Field::Attribute {
                    name: name.to_string(),
                    ty,
                },
            })
        };
        if let Some(field) = system(name) {
            return Some(field);
        }
        if name == "ScheduleId" || name == "TemporalScheduleId" {
            return Some(Field::Column(Column::WorkflowId));
        }
        match name.strip_prefix("Temporal") {
            Some(bare) => self
                .custom
                .get(bare)
                .map(|ty| Field::Attribute {
                    name: bare.to_string(),
                    ty: *ty,
                })
                .or_else(|| system(bare)),
            None => system(&format!("Temporal{name}")),
        }
    }

    fn expr(&mut self, expr: &Expr, negated: bool) -> Result<Filter, QueryError> {
        Ok(match expr {
            Expr::Not(inner) => self.expr(inner, !negated)?,
            Expr::And(left, right) | Expr::Or(left, right) => {
                let parts = vec![self.expr(left, negated)?, self.expr(right, negated)?];
                // `NOT (a AND b)` is `NOT a OR NOT b`, and the other way round.
                let conjunction = matches!(expr, Expr::And(..)) != negated;
                let mut flat = Vec::new();
                for part in parts {
                    match part {
                        Filter::And(inner) if conjunction => flat.extend(inner),
                        Filter::Or(inner) if !conjunction => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                if conjunction {
                    Filter::And(flat)
                } else {
                    Filter::Or(flat)
                }
            }
            Expr::Pred {
                name,
                negated: inner_negated,
                predicate,
            } => {
                let field = self.field(name)?;
                let test = test(&field, predicate, *inner_negated != negated, *inner_negated)?;
                Filter::Atom(Atom { field, test })
            }
        })
    }
}

/// The operator as Temporal's messages spell it.
fn operator_name(predicate: &Predicate, written_negated: bool) -> String {
    let not = if written_negated { "NOT " } else { "" };
    match predicate {
        Predicate::Cmp(op, _) => op.to_string(),
        Predicate::In(_) => format!("{not}IN"),
        Predicate::Between(..) => format!("{not}BETWEEN"),
        Predicate::StartsWith(_) => format!("{not}STARTS_WITH"),
        Predicate::Like => format!("{not}LIKE"),
        Predicate::IsNull | Predicate::Bare => String::new(),
    }
}

fn allowed(ty: SaType, field: &Field, predicate: &Predicate) -> bool {
    let status = matches!(field, Field::Column(Column::ExecutionStatus));
    match predicate {
        Predicate::IsNull => true,
        Predicate::Like | Predicate::Bare => false,
        Predicate::Cmp(op, _) => match ty {
            SaType::Text | SaType::KeywordList => matches!(*op, "=" | "!="),
            _ => true,
        },
        Predicate::In(_) => ty != SaType::Text,
        Predicate::Between(..) => !matches!(ty, SaType::Text | SaType::KeywordList),
        Predicate::StartsWith(_) => ty == SaType::Keyword && !status,
    }
}

fn test(
    field: &Field,
    predicate: &Predicate,
    negated: bool,
    written_negated: bool,
) -> Result<Test, QueryError> {
    let ty = field.ty();
    if let Predicate::Bare = predicate {
        return Err(unsupported(format!(
            "search attribute '{}' needs an operator and a value",
            field.name()
        )));
    }
    if !allowed(ty, field, predicate) {
        return Err(unsupported(format!(
            "operator '{}' not supported for {} type search attribute '{}'",
            operator_name(predicate, written_negated),
            ty.name(),
            field.name()
        )));
    }
    Ok(match predicate {
        Predicate::IsNull => Test::Null { negated },
        Predicate::Cmp(op, literal) => {
            let op = CmpOp::parse(op);
            let op = if negated { op.negate() } else { op };
            if ty == SaType::Text {
                Test::Tokens {
                    tokens: text_tokens(field, literal)?,
                    negated: op == CmpOp::Ne,
                }
            } else {
                Test::Cmp(op, value(field, literal)?)
            }
        }
        Predicate::In(literals) => Test::In {
            values: literals
                .iter()
                .map(|literal| value(field, literal))
                .collect::<Result<_, _>>()?,
            negated,
        },
        Predicate::Between(low, high) => {
            if ty == SaType::Bool {
                return Err(invalid(format!(
                    "cannot do range condition on search attribute '{}' of type Bool",
                    field.name()
                )));
            }
            Test::Between {
                low: value(field, low)?,
                high: value(field, high)?,
                negated,
            }
        }
        Predicate::StartsWith(literal) => match value(field, literal)? {
            Value::Text(prefix) => Test::StartsWith { prefix, negated },
            _ => unreachable!("keyword values are text"),
        },
        Predicate::Like | Predicate::Bare => unreachable!("refused above"),
    })
}

/// A literal as Go's `%#v` prints it, with its Go type, for Temporal's value-type message.
fn describe(literal: &Literal) -> (String, &'static str) {
    match literal {
        Literal::Str(text) => (format!("{text:?}"), "string"),
        Literal::Int(int) => (int.to_string(), "int64"),
        Literal::Float(float) => (format!("{float}"), "float64"),
        Literal::Bool(flag) => (flag.to_string(), "bool"),
        Literal::Name(name) => (name.clone(), "string"),
    }
}

fn wrong_type(field: &Field, literal: &Literal) -> QueryError {
    let (shown, go_type) = describe(literal);
    invalid(format!(
        "invalid value type for search attribute {} of type {}: {shown} (type: {go_type})",
        field.name(),
        field.ty().name()
    ))
}

fn value(field: &Field, literal: &Literal) -> Result<Value, QueryError> {
    if let Literal::Name(name) = literal {
        return Err(unsupported(format!(
            "column name on the right side of comparison expression (did you forget to quote \"{name}\"?)"
        )));
    }
    if let Field::Column(Column::ExecutionStatus) = field {
        return execution_status(literal);
    }
    let duration = matches!(field, Field::Column(Column::ExecutionDuration));
    Ok(match (field.ty(), literal) {
        (SaType::Keyword | SaType::KeywordList, Literal::Str(text)) => Value::Text(text.clone()),
        (SaType::Int, Literal::Int(int)) => Value::Int(*int),
        (SaType::Int, Literal::Float(float)) => Value::Double(*float),
        (SaType::Int, Literal::Str(text)) if duration => match parse_duration(text) {
            Some(nanos) => Value::Int(nanos),
            None => return Err(wrong_type(field, literal)),
        },
        (SaType::Double, Literal::Int(int)) => Value::Double(*int as f64),
        (SaType::Double, Literal::Float(float)) => Value::Double(*float),
        (SaType::Bool, Literal::Bool(flag)) => Value::Int(i64::from(*flag)),
        (SaType::Datetime, Literal::Int(nanos)) => Value::Int(*nanos),
        (SaType::Datetime, Literal::Str(text)) => match parse_rfc3339(text) {
            Some(nanos) => Value::Int(nanos),
            None => return Err(invalid(format!("unable to parse datetime '{text}'"))),
        },
        _ => return Err(wrong_type(field, literal)),
    })
}

fn execution_status(literal: &Literal) -> Result<Value, QueryError> {
    let status = match literal {
        Literal::Str(text) => WorkflowExecutionStatus::from_str_name(text)
            .or_else(|| status_of_name(text))
            .filter(|status| *status != WorkflowExecutionStatus::Unspecified),
        Literal::Int(number) => i32::try_from(*number)
            .ok()
            .and_then(|number| WorkflowExecutionStatus::try_from(number).ok())
            .filter(|status| *status != WorkflowExecutionStatus::Unspecified),
        _ => None,
    };
    match status {
        Some(status) => Ok(Value::Int(status as i64)),
        None => {
            let shown = match literal {
                Literal::Str(text) => text.clone(),
                other => describe(other).0,
            };
            Err(invalid(format!("invalid ExecutionStatus value '{shown}'")))
        }
    }
}

/// `Running`, `ContinuedAsNew`, ...: the CamelCase names Temporal lists statuses by.
fn status_of_name(name: &str) -> Option<WorkflowExecutionStatus> {
    (1..=7)
        .filter_map(|number| WorkflowExecutionStatus::try_from(number).ok())
        .find(|status| status_name(*status) == name)
}

/// The CamelCase name of a status, as counts group by it.
pub fn status_name(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        WorkflowExecutionStatus::Paused => "Paused",
        WorkflowExecutionStatus::Unspecified => "Unspecified",
    }
}

fn text_tokens(field: &Field, literal: &Literal) -> Result<Vec<String>, QueryError> {
    let Literal::Str(text) = literal else {
        return Err(match literal {
            Literal::Name(_) => value(field, literal).expect_err("a name is refused"),
            _ => wrong_type(field, literal),
        });
    };
    let found = tokens(text);
    if found.is_empty() {
        return Err(invalid(format!(
            "no tokens found filtering on Text type search attribute {}",
            field.name()
        )));
    }
    Ok(found)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(int) => write!(f, "{int}"),
            Value::Double(float) => write!(f, "{float:?}"),
            Value::Text(text) => write!(f, "{text:?}"),
        }
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.field.name();
        let not = |negated: bool| if negated { "NOT " } else { "" };
        match &self.test {
            Test::Cmp(op, value) => write!(f, "{name} {} {value}", op.sql()),
            Test::In { values, negated } => {
                write!(f, "{name} {}IN ({})", not(*negated), list(values))
            }
            Test::Between { low, high, negated } => {
                write!(f, "{name} {}BETWEEN {low} AND {high}", not(*negated))
            }
            Test::StartsWith { prefix, negated } => {
                write!(f, "{name} {}STARTS_WITH {prefix:?}", not(*negated))
            }
            Test::Null { negated } => write!(f, "{name} IS {}NULL", not(*negated)),
            Test::Tokens { tokens, negated } => {
                write!(f, "{name} {}MATCHES {}", not(*negated), tokens.join("|"))
            }
        }
    }
}

/// A canonical text of the filter, for tests and logs.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[Filter], word: &str| {
            let texts: Vec<String> = parts.iter().map(|part| format!("{part}")).collect();
            write!(f, "({})", texts.join(word))
        };
        match self {
            Filter::All => write!(f, "TRUE"),
            Filter::And(parts) => join(f, parts, " AND "),
            Filter::Or(parts) => join(f, parts, " OR "),
            Filter::Atom(atom) => write!(f, "{atom}"),
        }
    }
}
