//! The in-memory registry of workflow updates that are admitted, sent to a worker, or accepted
//! and not completed, per run, with the channel each caller waits on. As in Temporal, an update
//! that is only admitted is not durable: if this process goes, its caller's call fails and the
//! SDK sends it again. Accepted and completed updates are durable through their events.
//!
//! Every change is made under the run's lock (inside `Inner::update`), so the registry and the
//! run's mutable state agree; the waiters are told only after the write that made a change
//! durable.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sundial_common::error::ExhaustedCause;
use sundial_common::{Error, WorkflowKey};
use sundial_history_core::state::MutableState;
use sundial_history_core::update::{
    PendingUpdate, UpdateResult, accepted_update_completed_workflow_failure,
};
use sundial_proto::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::protocol::v1::{Message, message::SequencingId};
use sundial_proto::api::update::v1::{Outcome, Request, outcome};
use tokio::sync::watch;

/// Where an update is, as its callers see it.
#[derive(Debug, Clone)]
pub(crate) enum UpdateStatus {
    Admitted,
    Accepted,
    Completed(Box<Outcome>),
    /// The update is gone without an outcome: the caller gets this error.
    Aborted(Error),
}

impl UpdateStatus {
    pub fn stage(&self) -> Stage {
        match self {
            UpdateStatus::Admitted | UpdateStatus::Aborted(_) => Stage::Admitted,
            UpdateStatus::Accepted => Stage::Accepted,
            UpdateStatus::Completed(_) => Stage::Completed,
        }
    }

    /// Whether a caller waiting for `wanted` can be answered now.
    pub fn reached(&self, wanted: Stage) -> bool {
        match self {
            UpdateStatus::Aborted(_) | UpdateStatus::Completed(_) => true,
            other => other.stage() as i32 >= wanted as i32,
        }
    }
}

pub(crate) fn failure_outcome(failure: Failure) -> Outcome {
    Outcome {
        value: Some(outcome::Value::Failure(failure)),
    }
}

type Sender = Arc<watch::Sender<UpdateStatus>>;

/// A change to tell an update's callers once the write that made it is durable.
pub(crate) struct Notice(Sender, UpdateStatus);

impl Notice {
    /// Tells the callers, unless the update already reached an end (an abort or outcome is
    /// never replaced by an earlier stage).
    pub fn send(self) {
        let Notice(sender, status) = self;
        sender.send_if_modified(|current| {
            if matches!(
                current,
                UpdateStatus::Completed(_) | UpdateStatus::Aborted(_)
            ) {
                return false;
            }
            *current = status;
            true
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Admitted,
    /// Carried by the workflow task scheduled at this event, at this attempt.
    Sent {
        scheduled_event_id: i64,
        attempt: i32,
    },
    Accepted,
}

struct Entry {
    update_id: String,
    request: Request,
    place: Place,
    sent_before: bool,
    size: usize,
    status: Sender,
}

/// The per-run limits of `history.maxInFlightUpdates`, `history.maxInFlightUpdatePayloads` and
/// `history.maxTotalUpdates`.
#[derive(Debug, Clone, Copy)]
pub struct UpdateLimits {
    pub max_in_flight: usize,
    pub max_in_flight_payload_bytes: usize,
    pub max_total: usize,
    /// How long a call waits for the stage it asks for (`history.longPollExpirationInterval`).
    pub long_poll: std::time::Duration,
}

impl Default for UpdateLimits {
    fn default() -> Self {
        UpdateLimits {
            max_in_flight: 10,
            max_in_flight_payload_bytes: 20 * 1024 * 1024,
            max_total: 2000,
            long_poll: std::time::Duration::from_secs(20),
        }
    }
}

/// What `admit` found.
pub(crate) enum Admission {
    /// A new update: the run needs a task to carry it.
    New(watch::Receiver<UpdateStatus>),
    /// The update id is in flight already: the caller joins it.
    Joined(watch::Receiver<UpdateStatus>),
}

#[derive(Default)]
pub(crate) struct Registry {
    runs: Mutex<HashMap<WorkflowKey, Vec<Entry>>>,
}

impl Registry {
    /// The channel of an update in flight on the run, if it is.
    pub fn subscribe(
        &self,
        key: &WorkflowKey,
        update_id: &str,
    ) -> Option<watch::Receiver<UpdateStatus>> {
        let runs = self.runs.lock();
        runs.get(key)?
            .iter()
            .find(|entry| entry.update_id == update_id)
            .map(|entry| entry.status.subscribe())
    }

    /// Follows an update that is accepted in `state` but not in the registry (this process
    /// started after it was accepted), so that its completion reaches callers.
    pub fn follow_accepted(
        &self,
        key: &WorkflowKey,
        update_id: &str,
    ) -> watch::Receiver<UpdateStatus> {
        if let Some(receiver) = self.subscribe(key, update_id) {
            return receiver;
        }
        let (sender, receiver) = watch::channel(UpdateStatus::Accepted);
        self.runs
            .lock()
            .entry(key.clone())
            .or_default()
            .push(Entry {
                update_id: update_id.to_string(),
                request: Request::default(),
                place: Place::Accepted,
                sent_before: true,
                size: 0,
                status: Arc::new(sender),
            });
        receiver
    }

    /// Admits an update (or joins the one with its id), under the limits. Call under the run's
    /// lock with its current state.
    pub fn admit(
        &self,
        key: &WorkflowKey,
        state: &MutableState,
        request: Request,
        limits: UpdateLimits,
    ) -> Result<Admission, Error> {
        let update_id = request
            .meta
            .as_ref()
            .map(|meta| meta.update_id.clone())
            .unwrap_or_default();
        let mut runs = self.runs.lock();
        let entries = runs.entry(key.clone()).or_default();
        if let Some(entry) = entries.iter().find(|entry| entry.update_id == update_id) {
            return Ok(Admission::Joined(entry.status.subscribe()));
        }
        let in_flight = entries.len();
        if in_flight >= limits.max_in_flight {
            return Err(Error::ResourceExhausted {
                message: format!(
                    "limit on number of concurrent in-flight updates has been reached ({})",
                    limits.max_in_flight
                ),
                cause: ExhaustedCause::ConcurrentLimit,
            });
        }
        let not_accepted = entries
            .iter()
            .filter(|entry| entry.place != Place::Accepted)
            .count();
        if not_accepted + state.updates.len() >= limits.max_total {
            return Err(Error::FailedPrecondition(format!(
                "The limit on the total number of distinct updates in this workflow has been reached ({}). Make sure the update IDs are reused for retries of the same update, and consider continuing the workflow as new before it reaches this limit.",
                limits.max_total
            )));
        }
        let size = prost::Message::encoded_len(&request);
        let in_flight_bytes: usize = entries.iter().map(|entry| entry.size).sum();
        if in_flight_bytes + size >= limits.max_in_flight_payload_bytes {
            return Err(Error::ResourceExhausted {
                message: format!(
                    "limit on total payload size of in-flight updates has been reached ({} bytes)",
                    limits.max_in_flight_payload_bytes
                ),
                cause: ExhaustedCause::ConcurrentLimit,
            });
        }
        let (sender, receiver) = watch::channel(UpdateStatus::Admitted);
        entries.push(Entry {
            update_id,
            request,
            place: Place::Admitted,
            sent_before: false,
            size,
            status: Arc::new(sender),
        });
        Ok(Admission::New(receiver))
    }

    /// Every update of the runs `gone` picks (their shard left this host): callers retry.
    pub fn drop_runs(&self, gone: impl Fn(&WorkflowKey) -> bool) -> Vec<Notice> {
        let keys: Vec<WorkflowKey> = self
            .runs
            .lock()
            .keys()
            .filter(|key| gone(key))
            .cloned()
            .collect();
        keys.iter().flat_map(|key| self.drop_run(key)).collect()
    }

    /// The messages a workflow task carries when it starts: every update admitted or sent
    /// before without an answer, in admission order, each now sent on this task.
    pub fn deliver(
        &self,
        key: &WorkflowKey,
        scheduled_event_id: i64,
        attempt: i32,
        started_event_id: i64,
    ) -> Vec<Message> {
        let mut runs = self.runs.lock();
        let Some(entries) = runs.get_mut(key) else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        for entry in entries.iter_mut() {
            if entry.place == Place::Accepted {
                continue;
            }
            if let Place::Sent { .. } = entry.place {
                entry.sent_before = true;
            }
            entry.place = Place::Sent {
                scheduled_event_id,
                attempt,
            };
            messages.push(Message {
                id: format!("{}/request", entry.update_id),
                protocol_instance_id: entry.update_id.clone(),
                body: Some(sundial_proto::prost_types::Any {
                    type_url: "type.googleapis.com/temporal.api.update.v1.Request".into(),
                    value: prost::Message::encode_to_vec(&entry.request),
                }),
                sequencing_id: Some(SequencingId::EventId(started_event_id - 1)),
            });
        }
        messages
    }

    /// The updates a completion of the given task sees.
    pub fn pending(
        &self,
        key: &WorkflowKey,
        scheduled_event_id: i64,
        attempt: i32,
    ) -> Vec<PendingUpdate> {
        let runs = self.runs.lock();
        let Some(entries) = runs.get(key) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter(|entry| entry.place != Place::Accepted)
            .map(|entry| {
                let on_this_task = entry.place
                    == Place::Sent {
                        scheduled_event_id,
                        attempt,
                    };
                PendingUpdate {
                    update_id: entry.update_id.clone(),
                    request: entry.request.clone(),
                    sent: on_this_task
                        || entry.sent_before
                        || matches!(entry.place, Place::Sent { .. }),
                    sent_on_this_task: on_this_task,
                }
            })
            .collect()
    }

    /// Applies what a completion did to the run's updates; the notices go out after its write.
    pub fn apply(&self, key: &WorkflowKey, results: &[UpdateResult]) -> Vec<Notice> {
        let mut notices = Vec::new();
        let mut runs = self.runs.lock();
        let entries = runs.entry(key.clone()).or_default();
        for result in results {
            match result {
                UpdateResult::Accepted { update_id, request } => {
                    match entries
                        .iter_mut()
                        .find(|entry| &entry.update_id == update_id)
                    {
                        Some(entry) => {
                            entry.place = Place::Accepted;
                            notices.push(Notice(entry.status.clone(), UpdateStatus::Accepted));
                        }
                        None => {
                            let (sender, _) = watch::channel(UpdateStatus::Accepted);
                            entries.push(Entry {
                                update_id: update_id.clone(),
                                request: request.clone().unwrap_or_default(),
                                place: Place::Accepted,
                                sent_before: true,
                                size: 0,
                                status: Arc::new(sender),
                            });
                        }
                    }
                }
                UpdateResult::Completed { update_id, outcome } => {
                    if let Some(index) = entries
                        .iter()
                        .position(|entry| &entry.update_id == update_id)
                    {
                        let entry = entries.remove(index);
                        notices.push(Notice(
                            entry.status,
                            UpdateStatus::Completed(Box::new(outcome.clone())),
                        ));
                    }
                }
                UpdateResult::Rejected { update_id, failure } => {
                    if let Some(index) = entries
                        .iter()
                        .position(|entry| &entry.update_id == update_id)
                    {
                        let entry = entries.remove(index);
                        notices.push(Notice(
                            entry.status,
                            UpdateStatus::Completed(Box::new(failure_outcome(failure.clone()))),
                        ));
                    }
                }
            }
        }
        if entries.is_empty() {
            runs.remove(key);
        }
        notices
    }

    /// The server failed the task that carried these updates: they are aborted.
    pub fn abort_sent(
        &self,
        key: &WorkflowKey,
        scheduled_event_id: i64,
        attempt: i32,
    ) -> Vec<Notice> {
        let error = Error::WorkflowNotReady(
            "Unable to perform workflow execution update due to unexpected workflow task failure."
                .into(),
        );
        self.take(key, |entry| {
            (entry.place
                == Place::Sent {
                    scheduled_event_id,
                    attempt,
                })
            .then(|| UpdateStatus::Aborted(error.clone()))
        })
    }

    /// The run closed: updates not accepted are aborted (retryably when a new run follows);
    /// accepted ones fail, as they can no longer complete.
    pub fn close_run(&self, key: &WorkflowKey, new_run_follows: bool) -> Vec<Notice> {
        self.take(key, |entry| {
            Some(match entry.place {
                Place::Accepted => UpdateStatus::Completed(Box::new(failure_outcome(
                    accepted_update_completed_workflow_failure(),
                ))),
                _ if new_run_follows => UpdateStatus::Aborted(workflow_closing()),
                _ => UpdateStatus::Aborted(Error::not_found(
                    "workflow update was aborted by closing workflow",
                )),
            })
        })
    }

    /// The run's state is no longer known here (a write failed, or the run left the cache
    /// with its shard): every caller is told to try again.
    pub fn drop_run(&self, key: &WorkflowKey) -> Vec<Notice> {
        self.take(key, |_| {
            Some(UpdateStatus::Aborted(Error::Unavailable(
                "workflow update was lost; retry the request".into(),
            )))
        })
    }

    fn take(
        &self,
        key: &WorkflowKey,
        mut verdict: impl FnMut(&Entry) -> Option<UpdateStatus>,
    ) -> Vec<Notice> {
        let mut runs = self.runs.lock();
        let Some(entries) = runs.get_mut(key) else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        entries.retain(|entry| match verdict(entry) {
            Some(status) => {
                notices.push(Notice(entry.status.clone(), status));
                false
            }
            None => true,
        });
        if entries.is_empty() {
            runs.remove(key);
        }
        notices
    }
}

/// The retryable error of an update that finds (or is caught by) a run closing into a new one.
pub(crate) fn workflow_closing() -> Error {
    Error::ResourceExhausted {
        message: "workflow operation can not be applied because workflow is closing".into(),
        cause: ExhaustedCause::BusyWorkflow,
    }
}
