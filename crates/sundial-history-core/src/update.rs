//! Workflow updates in a workflow task completion: the protocol messages the worker sends back
//! (acceptance, rejection, response), the events they write, the updates the server rejects
//! because the worker ignored them, and whether a speculative task can vanish.
//!
//! Updates that are only admitted or sent are not part of mutable state: the history service
//! keeps them in memory and hands the core the ones the run has (`PendingUpdate`). Accepted
//! updates are in `MutableState::updates`, through their events.

use std::collections::HashSet;

use prost::Message as _;
use sundial_proto::api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use sundial_proto::api::history::v1::history_event::Attributes as A;
use sundial_proto::api::history::v1::{
    WorkflowExecutionUpdateAcceptedEventAttributes, WorkflowExecutionUpdateCompletedEventAttributes,
};
use sundial_proto::api::protocol::v1::Message;
use sundial_proto::api::update::v1::{Acceptance, Meta, Outcome, Rejection, Request, Response};

use crate::ctx::Mutation;

const ACCEPTANCE: &str = "temporal.api.update.v1.Acceptance";
const REJECTION: &str = "temporal.api.update.v1.Rejection";
const RESPONSE: &str = "temporal.api.update.v1.Response";

/// An update the history service holds for the run (admitted, or sent to a worker and not
/// answered yet).
#[derive(Debug, Clone)]
pub struct PendingUpdate {
    pub update_id: String,
    pub request: Request,
    /// Sent on some workflow task already.
    pub sent: bool,
    /// Sent on the task being completed.
    pub sent_on_this_task: bool,
}

/// What a completion did to an update, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateResult {
    /// Accepted: its `WORKFLOW_EXECUTION_UPDATE_ACCEPTED` event is written. `request` is set
    /// when the server did not know the update (the worker's acceptance carried it).
    Accepted {
        update_id: String,
        request: Option<Request>,
    },
    Completed {
        update_id: String,
        outcome: Outcome,
    },
    /// Rejected by the worker, or by the server because the worker did not answer it.
    Rejected {
        update_id: String,
        failure: Failure,
    },
}

/// The failure of an update the worker was sent and did not answer.
pub fn unprocessed_update_failure() -> Failure {
    server_application_failure(
        "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
        "UnprocessedUpdate",
    )
}

/// The outcome of an update that was accepted when its run closed without completing it.
pub fn accepted_update_completed_workflow_failure() -> Failure {
    server_application_failure(
        "Workflow Update failed because the Workflow completed before the Update completed.",
        "AcceptedUpdateCompletedWorkflow",
    )
}

fn server_application_failure(message: &str, failure_type: &str) -> Failure {
    Failure {
        message: message.to_string(),
        source: "Server".to_string(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: failure_type.to_string(),
                non_retryable: true,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// A message that cannot be processed; the task fails with
/// `BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE` (or, for an oversized one, the run is terminated).
pub(crate) struct BadMessage {
    pub message: String,
    pub too_large: bool,
}

fn bad(message: impl Into<String>) -> BadMessage {
    BadMessage {
        message: message.into(),
        too_large: false,
    }
}

fn body_type(message: &Message) -> &str {
    message
        .body
        .as_ref()
        .map(|body| body.type_url.rsplit('/').next().unwrap_or(""))
        .unwrap_or("")
}

/// True when every message is a rejection (or there are none): the first condition for a
/// speculative task to vanish.
pub(crate) fn only_rejections(messages: &[Message]) -> bool {
    messages
        .iter()
        .all(|message| body_type(message) == REJECTION)
}

/// The update messages of one completion, processed once each: those a `PROTOCOL_MESSAGE`
/// command names, at that command, then the rest in order.
pub(crate) struct UpdateWork<'r> {
    messages: &'r [Message],
    done: Vec<bool>,
    pending: &'r [PendingUpdate],
    /// Updates that got an acceptance or a rejection here.
    answered: HashSet<String>,
    pub results: Vec<UpdateResult>,
}

impl<'r> UpdateWork<'r> {
    pub fn new(messages: &'r [Message], pending: &'r [PendingUpdate]) -> Self {
        UpdateWork {
            messages,
            done: vec![false; messages.len()],
            pending,
            answered: HashSet::new(),
            results: Vec::new(),
        }
    }

    /// The message a `PROTOCOL_MESSAGE` command refers to.
    pub fn process_by_id(
        &mut self,
        mutation: &mut Mutation,
        message_id: &str,
        blob_limit: usize,
    ) -> Result<(), BadMessage> {
        let Some(index) = self
            .messages
            .iter()
            .position(|message| message.id == message_id)
        else {
            return Err(bad(format!(
                "ProtocolMessageCommand referenced absent message ID {message_id}"
            )));
        };
        self.process(mutation, index, blob_limit)
    }

    /// Every message no command referred to, in request order.
    pub fn process_rest(
        &mut self,
        mutation: &mut Mutation,
        blob_limit: usize,
    ) -> Result<(), BadMessage> {
        for index in 0..self.messages.len() {
            if !mutation.state.is_running() {
                break;
            }
            self.process(mutation, index, blob_limit)?;
        }
        Ok(())
    }

    /// Rejects, for the server, each update sent on this task that the worker neither accepted
    /// nor rejected.
    pub fn reject_unanswered(&mut self) {
        for update in self.pending {
            if update.sent_on_this_task && !self.answered.contains(&update.update_id) {
                self.answered.insert(update.update_id.clone());
                self.results.push(UpdateResult::Rejected {
                    update_id: update.update_id.clone(),
                    failure: unprocessed_update_failure(),
                });
            }
        }
    }

    /// Whether updates were admitted that no task has carried yet and this completion did not
    /// answer: they need a task of their own.
    pub fn waiting_for_a_task(&self) -> bool {
        self.pending
            .iter()
            .any(|update| !update.sent && !self.answered.contains(&update.update_id))
    }

    fn pending_update(&self, update_id: &str) -> Option<&PendingUpdate> {
        self.pending
            .iter()
            .find(|update| update.update_id == update_id)
    }

    fn process(
        &mut self,
        mutation: &mut Mutation,
        index: usize,
        blob_limit: usize,
    ) -> Result<(), BadMessage> {
        if self.done[index] {
            return Ok(());
        }
        self.done[index] = true;
        let message = &self.messages[index];
        if message.encoded_len() > blob_limit {
            return Err(BadMessage {
                message: "Blob data size exceeds limit.".into(),
                too_large: true,
            });
        }
        let body = message.body.as_ref().map(|body| body.value.as_slice());
        let update_id = message.protocol_instance_id.clone();
        match body_type(message) {
            ACCEPTANCE => {
                let acceptance = Acceptance::decode(body.unwrap_or_default())
                    .map_err(|_| bad("invalid *update.Acceptance: cannot decode the body"))?;
                self.accept(mutation, update_id, acceptance)
            }
            REJECTION => {
                let rejection = Rejection::decode(body.unwrap_or_default())
                    .map_err(|_| bad("invalid *update.Rejection: cannot decode the body"))?;
                self.reject(mutation, update_id, rejection)
            }
            RESPONSE => {
                let response = Response::decode(body.unwrap_or_default())
                    .map_err(|_| bad("invalid *update.Response: cannot decode the body"))?;
                self.respond(mutation, update_id, response)
            }
            other => Err(bad(format!(
                "unsupported protocol message body type {other:?} for message {}",
                message.id
            ))),
        }
    }

    /// The state an update is in, named as Temporal's messages name it.
    fn state_name(&self, mutation: &Mutation, update_id: &str) -> Option<&'static str> {
        if let Some(info) = mutation.state.updates.get(update_id) {
            return Some(if info.completed_event_id > 0 {
                "Completed"
            } else {
                "Accepted"
            });
        }
        self.pending_update(update_id)
            .map(|update| if update.sent { "Sent" } else { "Admitted" })
    }

    fn invalid_transition(update_id: &str, body: &str, state: &str) -> BadMessage {
        bad(format!(
            "invalid state transition attempted for Update {update_id}: received *update.{body} message while in state {state}"
        ))
    }

    fn not_found(update_id: &str) -> BadMessage {
        bad(format!(
            "update {update_id} wasn't found on the server. This is most likely a transient error which will be resolved automatically by retries"
        ))
    }

    fn accept(
        &mut self,
        mutation: &mut Mutation,
        update_id: String,
        acceptance: Acceptance,
    ) -> Result<(), BadMessage> {
        let (request, resurrected) = match self.state_name(mutation, &update_id) {
            Some(state @ ("Accepted" | "Completed")) => {
                return Err(Self::invalid_transition(&update_id, "Acceptance", state));
            }
            Some(_) => (
                self.pending_update(&update_id)
                    .map(|update| update.request.clone()),
                false,
            ),
            None => (acceptance.accepted_request.clone(), true),
        };
        let Some(request) = request else {
            return Err(Self::not_found(&update_id));
        };
        if acceptance.accepted_request_message_id.is_empty() {
            return Err(bad(
                "invalid *update.Acceptance: accepted_request_message_id is not set",
            ));
        }
        if acceptance.accepted_request_sequencing_event_id == 0 {
            return Err(bad(
                "invalid *update.Acceptance: accepted_request_sequencing_event_id is not set",
            ));
        }
        mutation.add(A::WorkflowExecutionUpdateAcceptedEventAttributes(
            WorkflowExecutionUpdateAcceptedEventAttributes {
                protocol_instance_id: update_id.clone(),
                accepted_request_message_id: acceptance.accepted_request_message_id,
                accepted_request_sequencing_event_id: acceptance
                    .accepted_request_sequencing_event_id,
                accepted_request: Some(request.clone()),
            },
        ));
        self.answered.insert(update_id.clone());
        self.results.push(UpdateResult::Accepted {
            update_id,
            request: resurrected.then_some(request),
        });
        Ok(())
    }

    fn reject(
        &mut self,
        mutation: &mut Mutation,
        update_id: String,
        rejection: Rejection,
    ) -> Result<(), BadMessage> {
        match self.state_name(mutation, &update_id) {
            Some(state @ ("Accepted" | "Completed")) => {
                return Err(Self::invalid_transition(&update_id, "Rejection", state));
            }
            Some(_) => {}
            None if rejection.rejected_request.is_some() => {}
            None => return Err(Self::not_found(&update_id)),
        }
        self.answered.insert(update_id.clone());
        self.results.push(UpdateResult::Rejected {
            update_id,
            failure: rejection.failure.unwrap_or_default(),
        });
        Ok(())
    }

    fn respond(
        &mut self,
        mutation: &mut Mutation,
        update_id: String,
        response: Response,
    ) -> Result<(), BadMessage> {
        let accepted_event_id = match self.state_name(mutation, &update_id) {
            Some("Accepted") => mutation.state.updates[&update_id].accepted_event_id,
            Some(state) => return Err(Self::invalid_transition(&update_id, "Response", state)),
            None => return Err(Self::not_found(&update_id)),
        };
        let meta_id = response
            .meta
            .as_ref()
            .map(|meta| meta.update_id.as_str())
            .unwrap_or("");
        if meta_id != update_id {
            return Err(bad(format!(
                "invalid *update.Response: meta.update_id {meta_id:?} does not match the protocol instance {update_id:?}"
            )));
        }
        let Some(outcome) = response.outcome else {
            return Err(bad("invalid *update.Response: outcome is not set"));
        };
        mutation.add(A::WorkflowExecutionUpdateCompletedEventAttributes(
            WorkflowExecutionUpdateCompletedEventAttributes {
                meta: Some(Meta {
                    update_id: update_id.clone(),
                    identity: String::new(),
                }),
                accepted_event_id,
                outcome: Some(outcome.clone()),
            },
        ));
        self.results
            .push(UpdateResult::Completed { update_id, outcome });
        Ok(())
    }
}
