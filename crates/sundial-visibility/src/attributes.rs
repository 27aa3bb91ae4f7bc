//! The search attributes every namespace has, and the types of custom ones.

use sundial_proto::api::enums::v1::IndexedValueType;

/// The type of a search attribute (Temporal's `IndexedValueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaType {
    Text,
    Keyword,
    Int,
    Double,
    Bool,
    Datetime,
    KeywordList,
}

impl SaType {
    pub fn from_indexed(value: i32) -> Option<SaType> {
        Some(match IndexedValueType::try_from(value).ok()? {
            IndexedValueType::Text => SaType::Text,
            IndexedValueType::Keyword => SaType::Keyword,
            IndexedValueType::Int => SaType::Int,
            IndexedValueType::Double => SaType::Double,
            IndexedValueType::Bool => SaType::Bool,
            IndexedValueType::Datetime => SaType::Datetime,
            IndexedValueType::KeywordList => SaType::KeywordList,
            IndexedValueType::Unspecified => return None,
        })
    }

    pub fn indexed(self) -> IndexedValueType {
        match self {
            SaType::Text => IndexedValueType::Text,
            SaType::Keyword => IndexedValueType::Keyword,
            SaType::Int => IndexedValueType::Int,
            SaType::Double => IndexedValueType::Double,
            SaType::Bool => IndexedValueType::Bool,
            SaType::Datetime => IndexedValueType::Datetime,
            SaType::KeywordList => IndexedValueType::KeywordList,
        }
    }

    /// The name Temporal's messages and payload metadata use (`Keyword`, `KeywordList`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SaType::Text => "Text",
            SaType::Keyword => "Keyword",
            SaType::Int => "Int",
            SaType::Double => "Double",
            SaType::Bool => "Bool",
            SaType::Datetime => "Datetime",
            SaType::KeywordList => "KeywordList",
        }
    }

    pub fn from_name(name: &str) -> Option<SaType> {
        [
            SaType::Text,
            SaType::Keyword,
            SaType::Int,
            SaType::Double,
            SaType::Bool,
            SaType::Datetime,
            SaType::KeywordList,
        ]
        .into_iter()
        .find(|ty| ty.name() == name)
    }
}

/// How many custom attributes of a type a namespace may have: the slots of Temporal's SQL
/// visibility schema, whose limits (and messages) Sundial keeps.
pub fn custom_attribute_limit(ty: SaType) -> usize {
    match ty {
        SaType::Keyword => 10,
        _ => 3,
    }
}

/// A system attribute that is a column of the visibility row, not an entry of the run's map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    WorkflowId,
    RunId,
    WorkflowType,
    TaskQueue,
    ExecutionStatus,
    StartTime,
    ExecutionTime,
    CloseTime,
    ExecutionDuration,
    HistoryLength,
    HistorySizeBytes,
    StateTransitionCount,
    ParentWorkflowId,
    ParentRunId,
    RootWorkflowId,
    RootRunId,
}

impl Column {
    pub const ALL: [Column; 16] = [
        Column::WorkflowId,
        Column::RunId,
        Column::WorkflowType,
        Column::TaskQueue,
        Column::ExecutionStatus,
        Column::StartTime,
        Column::ExecutionTime,
        Column::CloseTime,
        Column::ExecutionDuration,
        Column::HistoryLength,
        Column::HistorySizeBytes,
        Column::StateTransitionCount,
        Column::ParentWorkflowId,
        Column::ParentRunId,
        Column::RootWorkflowId,
        Column::RootRunId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::WorkflowId => "WorkflowId",
            Column::RunId => "RunId",
            Column::WorkflowType => "WorkflowType",
            Column::TaskQueue => "TaskQueue",
            Column::ExecutionStatus => "ExecutionStatus",
            Column::StartTime => "StartTime",
            Column::ExecutionTime => "ExecutionTime",
            Column::CloseTime => "CloseTime",
            Column::ExecutionDuration => "ExecutionDuration",
            Column::HistoryLength => "HistoryLength",
            Column::HistorySizeBytes => "HistorySizeBytes",
            Column::StateTransitionCount => "StateTransitionCount",
            Column::ParentWorkflowId => "ParentWorkflowId",
            Column::ParentRunId => "ParentRunId",
            Column::RootWorkflowId => "RootWorkflowId",
            Column::RootRunId => "RootRunId",
        }
    }

    pub fn ty(self) -> SaType {
        match self {
            Column::StartTime | Column::ExecutionTime | Column::CloseTime => SaType::Datetime,
            Column::ExecutionDuration
            | Column::HistoryLength
            | Column::HistorySizeBytes
            | Column::StateTransitionCount => SaType::Int,
            _ => SaType::Keyword,
        }
    }

    fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|column| column.name() == name)
    }
}

/// The predefined attributes that live in a run's search-attribute map (set by SDKs, the
/// scheduler, batch jobs), with their types.
const PREDEFINED: [(&str, SaType); 21] = [
    ("TemporalChangeVersion", SaType::KeywordList),
    ("BinaryChecksums", SaType::KeywordList),
    ("BuildIds", SaType::KeywordList),
    ("BatcherNamespace", SaType::Keyword),
    ("BatcherUser", SaType::Keyword),
    ("TemporalScheduledStartTime", SaType::Datetime),
    ("TemporalScheduledById", SaType::Keyword),
    ("TemporalSchedulePaused", SaType::Bool),
    ("TemporalNamespaceDivision", SaType::Keyword),
    ("TemporalPauseInfo", SaType::KeywordList),
    ("TemporalReportedProblems", SaType::KeywordList),
    ("TemporalWorkerDeployment", SaType::Keyword),
    ("TemporalWorkerDeploymentVersion", SaType::Keyword),
    ("TemporalWorkflowVersioningBehavior", SaType::Keyword),
    ("TemporalUsedWorkerDeploymentVersions", SaType::KeywordList),
    ("TemporalExternalPayloadCount", SaType::Int),
    ("TemporalExternalPayloadSizeBytes", SaType::Int),
    // Reserved: never valid in a query or a map, listed so that nobody can register them.
    ("NamespaceId", SaType::Keyword),
    ("Memo", SaType::Keyword),
    ("MemoEncoding", SaType::Keyword),
    ("VisibilityTaskKey", SaType::Keyword),
];

const UNUSABLE: [&str; 4] = ["NamespaceId", "Memo", "MemoEncoding", "VisibilityTaskKey"];

/// A system attribute found by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    Column(Column),
    Predefined(&'static str, SaType),
}

pub(crate) fn system_attribute(name: &str) -> Option<System> {
    if let Some(column) = Column::from_name(name) {
        return Some(System::Column(column));
    }
    if UNUSABLE.contains(&name) {
        return None;
    }
    PREDEFINED
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(known, ty)| System::Predefined(known, *ty))
}

/// Every system attribute with its type, as `ListSearchAttributes` reports them.
pub fn system_attributes() -> Vec<(&'static str, SaType)> {
    Column::ALL
        .iter()
        .map(|column| (column.name(), column.ty()))
        .chain(
            PREDEFINED
                .iter()
                .filter(|(name, _)| !UNUSABLE.contains(name))
                .copied(),
        )
        .collect()
}

/// Whether a name is the system's: a system or predefined attribute, a reserved one, or any
/// name starting with `Temporal`. Such a name cannot be registered as a custom attribute.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with("Temporal")
        || Column::from_name(name).is_some()
        || PREDEFINED.iter().any(|(known, _)| *known == name)
}
