//! Search attributes at the frontend, as Temporal's frontend handles them: those a start request
//! sets are checked against the namespace's custom attributes, and those a response shows (a
//! description, a listed run, history events) carry their `type` and leave out custom names
//! the namespace no longer has.

use std::collections::HashMap;

use sundial_common::{Error, Result};
use sundial_history_core::Limits;
use sundial_proto::api::common::v1::SearchAttributes;
use sundial_proto::api::history::v1::{History, history_event::Attributes as A};
use sundial_visibility::SaType;
use sundial_visibility::validate::{annotate, check};

use crate::Namespaces;

/// The search attributes of a start request (start, signal-with-start), with Temporal's
/// messages as `InvalidArgument`.
pub(crate) fn check_start(
    search_attributes: Option<&SearchAttributes>,
    namespace: &str,
    namespaces: &Namespaces,
    limits: &Limits,
) -> Result<()> {
    match search_attributes {
        Some(attributes) if !attributes.indexed_fields.is_empty() => {
            let custom = namespaces.custom_attributes(namespace);
            check(attributes, namespace, &custom, &limits.search_attributes).map_err(Error::invalid)
        }
        _ => Ok(()),
    }
}

/// The outgoing form of the attributes in history events that carry them.
pub(crate) fn annotate_history(history: Option<&mut History>, custom: &HashMap<String, SaType>) {
    let Some(history) = history else {
        return;
    };
    for event in &mut history.events {
        let attributes = match event.attributes.as_mut() {
            Some(A::WorkflowExecutionStartedEventAttributes(a)) => a.search_attributes.as_mut(),
            Some(A::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                a.search_attributes.as_mut()
            }
            Some(A::StartChildWorkflowExecutionInitiatedEventAttributes(a)) => {
                a.search_attributes.as_mut()
            }
            Some(A::UpsertWorkflowSearchAttributesEventAttributes(a)) => {
                a.search_attributes.as_mut()
            }
            _ => None,
        };
        if let Some(attributes) = attributes {
            annotate(attributes, custom);
        }
    }
}
