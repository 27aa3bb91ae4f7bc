//! UpdateWorkflowExecution and PollWorkflowExecutionUpdate: admission under the run's lock,
//! then the wait for the stage the caller asked for.

use std::time::Instant;

use parking_lot::Mutex;
use sundial_common::{Error, Result, WorkflowKey};
use sundial_history_core as core;
use sundial_history_core::update::accepted_update_completed_workflow_failure;
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use sundial_proto::api::enums::v1::WorkflowIdConflictPolicy;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::update::v1::{Outcome, Request, UpdateRef, WaitPolicy};
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::{NamespaceRef, OperationStatus, UpdateWithStart};
use tokio::sync::watch;

use crate::engine::Inner;
use crate::updates::{Admission, UpdateLimits, UpdateStatus, failure_outcome};

/// Where an update stands when a call looks it up under the run's lock.
enum Found {
    Waiting(watch::Receiver<UpdateStatus>),
    /// Completed: its outcome is in this event.
    CompletedAt(i64),
    Outcome(Box<Outcome>),
}

/// What a call answers: the stage reached and, when completed, the outcome.
pub(crate) struct Answer {
    pub key: WorkflowKey,
    pub update_id: String,
    pub stage: Stage,
    pub outcome: Option<Outcome>,
}

impl Answer {
    /// The response, with the link Temporal gives it: to the run when the outcome is a
    /// failure (a rejection, or a handler's failure), to the accepted event of the update
    /// (by its request id) once accepted, none while only admitted.
    pub fn response(
        self,
        namespace: &str,
        request_id: &str,
    ) -> ws::UpdateWorkflowExecutionResponse {
        use sundial_proto::api::common::v1::link;
        use sundial_proto::api::enums::v1::EventType;
        use sundial_proto::api::update::v1::outcome::Value;
        let failed = matches!(
            self.outcome
                .as_ref()
                .and_then(|outcome| outcome.value.as_ref()),
            Some(Value::Failure(_))
        );
        let variant = if failed && self.stage == Stage::Completed {
            Some(link::Variant::Workflow(link::Workflow {
                namespace: namespace.to_string(),
                workflow_id: self.key.workflow_id.clone(),
                run_id: self.key.run_id.clone(),
                reason: "Update rejected".into(),
            }))
        } else if matches!(self.stage, Stage::Accepted | Stage::Completed) {
            Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
                namespace: namespace.to_string(),
                workflow_id: self.key.workflow_id.clone(),
                run_id: self.key.run_id.clone(),
                reference: Some(link::workflow_event::Reference::RequestIdRef(
                    link::workflow_event::RequestIdReference {
                        request_id: request_id.to_string(),
                        event_type: EventType::WorkflowExecutionUpdateAccepted as i32,
                    },
                )),
            }))
        } else {
            None
        };
        let mut response = self.response_without_link();
        response.link = variant.map(|variant| sundial_proto::api::common::v1::Link {
            variant: Some(variant),
        });
        response
    }

    /// The response of a stored outcome that update-with-start returns at once.
    pub fn response_without_link(self) -> ws::UpdateWorkflowExecutionResponse {
        ws::UpdateWorkflowExecutionResponse {
            update_ref: Some(self.update_ref()),
            stage: self.stage as i32,
            outcome: self.outcome,
            link: None,
        }
    }

    pub fn update_ref(&self) -> UpdateRef {
        UpdateRef {
            workflow_execution: Some(WorkflowExecution {
                workflow_id: self.key.workflow_id.clone(),
                run_id: self.key.run_id.clone(),
            }),
            update_id: self.update_id.clone(),
        }
    }
}

/// The stage a caller waits for: unspecified means completed.
fn wanted_stage(policy: Option<&WaitPolicy>) -> Stage {
    let stage = policy.map(|policy| policy.lifecycle_stage).unwrap_or(0);
    match Stage::try_from(stage).unwrap_or(Stage::Unspecified) {
        Stage::Unspecified => Stage::Completed,
        other => other,
    }
}

fn update_id_of(update: &Request) -> String {
    update
        .meta
        .as_ref()
        .map(|meta| meta.update_id.clone())
        .unwrap_or_default()
}

impl Inner {
    pub(crate) async fn update_workflow(
        &self,
        namespace_id: &str,
        request: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<Answer> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let key = self.resolve(namespace_id, &execution).await?;
        let update: Request = request.request.clone().unwrap_or_default();
        let update_id = update_id_of(&update);
        let wanted = wanted_stage(request.wait_policy.as_ref());
        let limits = *self.update_limits.read();
        let first_run = request.first_execution_run_id.clone();
        let found = self
            .update(&key, |state, env| {
                if !first_run.is_empty() && first_run != state.info().first_execution_run_id {
                    return Err(Error::not_found("workflow execution not found"));
                }
                if let Some(found) = self.known_update(&key, state, &update_id) {
                    return Ok((core::Transition::default(), found));
                }
                self.admit(&key, state, env, update, limits)
            })
            .await?;
        self.answer(key, update_id, found, wanted, deadline, limits.long_poll)
            .await
    }

    /// Admits a new update to a run (or joins the one in flight with its id), scheduling a
    /// speculative task for it when the run has none. Call under the run's lock.
    fn admit(
        &self,
        key: &WorkflowKey,
        state: &mut core::state::MutableState,
        env: &core::Env,
        update: Request,
        limits: UpdateLimits,
    ) -> Result<(core::Transition, Found)> {
        if !state.is_running() {
            return Err(Error::not_found("workflow execution already completed"));
        }
        if state
            .workflow_task
            .as_ref()
            .is_some_and(|task| task.attempt >= 3)
        {
            return Err(Error::WorkflowNotReady(
                "Unable to perform workflow execution update due to Workflow Task in failed state."
                    .into(),
            ));
        }
        match self.updates.admit(key, state, update, limits)? {
            Admission::Joined(receiver) => {
                Ok((core::Transition::default(), Found::Waiting(receiver)))
            }
            Admission::New(receiver) => Ok((
                core::schedule_for_update(state, env),
                Found::Waiting(receiver),
            )),
        }
    }

    /// Update-with-start (see `HistoryApi::update_with_start`). The per-operation outcome
    /// follows Temporal: a failure of the start aborts the update; a failure of the update on
    /// an existing run aborts the start; an update that fails after its run was started leaves
    /// the start done.
    pub(crate) async fn update_with_start(
        &self,
        namespace: &NamespaceRef,
        start: ws::StartWorkflowExecutionRequest,
        request: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<UpdateWithStart> {
        let update: Request = request.request.clone().unwrap_or_default();
        let request_id = update.request_id.clone();
        let update_id = update_id_of(&update);
        let wanted = wanted_stage(request.wait_policy.as_ref());
        let limits = *self.update_limits.read();
        let update_failed = |error: Error| UpdateWithStart::Failed {
            start: OperationStatus::Aborted,
            update: OperationStatus::Failed(error),
        };
        let start_failed = |error: Error| UpdateWithStart::Failed {
            start: OperationStatus::Failed(error),
            update: OperationStatus::Aborted,
        };
        let use_existing =
            start.workflow_id_conflict_policy == WorkflowIdConflictPolicy::UseExisting as i32;
        let current = match self
            .store
            .get_current_execution(&namespace.id, &start.workflow_id)
            .await
        {
            Ok(current) => current,
            Err(error) => return Ok(start_failed(error)),
        };
        if let Some(current) = current {
            let key = WorkflowKey::new(
                namespace.id.clone(),
                start.workflow_id.clone(),
                current.run_id.clone(),
            );
            let same_start =
                !start.request_id.is_empty() && start.request_id == current.start_request_id;
            // The run's answer: `None` when the start decides.
            let looked = self
                .update(&key, |state, env| {
                    let status = state.info().status;
                    if let Some(found) = self.known_update(&key, state, &update_id) {
                        return Ok((core::Transition::default(), Some(Ok((found, status)))));
                    }
                    if !state.is_running() || !(same_start || use_existing) {
                        return Ok((core::Transition::default(), None));
                    }
                    match self.admit(&key, state, env, update.clone(), limits) {
                        Ok((transition, found)) => Ok((transition, Some(Ok((found, status))))),
                        Err(error) => Ok((core::Transition::default(), Some(Err(error)))),
                    }
                })
                .await;
            match looked {
                Ok(Some(Ok((found, status)))) => {
                    let stored = !matches!(found, Found::Waiting(_));
                    let response = ws::StartWorkflowExecutionResponse {
                        run_id: key.run_id.clone(),
                        started: false,
                        status,
                        ..Default::default()
                    };
                    return Ok(
                        match self
                            .answer(key, update_id, found, wanted, deadline, limits.long_poll)
                            .await
                        {
                            Ok(answer) if stored => UpdateWithStart::Done {
                                start: Box::new(response),
                                update: Box::new(answer.response_without_link()),
                            },
                            Ok(answer) => UpdateWithStart::Done {
                                start: Box::new(response),
                                update: Box::new(answer.response(&namespace.name, &request_id)),
                            },
                            Err(error) => update_failed(error),
                        },
                    );
                }
                Ok(Some(Err(error))) => return Ok(update_failed(error)),
                // Gone since (deleted): the start decides.
                Ok(None) | Err(Error::NotFound(_)) => {}
                Err(error) => return Ok(start_failed(error)),
            }
        }
        let admitted: Mutex<Option<(WorkflowKey, watch::Receiver<UpdateStatus>)>> =
            Mutex::new(None);
        let refused: Mutex<bool> = Mutex::new(false);
        let on_create = |key: &WorkflowKey, state: &core::state::MutableState| {
            let admission = self
                .updates
                .admit(key, state, update.clone(), limits)
                .inspect_err(|_| *refused.lock() = true)?;
            let receiver = match admission {
                Admission::New(receiver) | Admission::Joined(receiver) => receiver,
            };
            *admitted.lock() = Some((key.clone(), receiver));
            Ok(())
        };
        let response = match self
            .start_workflow_with(namespace, start, None, None, Some(&on_create))
            .await
        {
            Ok(response) => response,
            Err(error) if *refused.lock() => return Ok(update_failed(error)),
            Err(error) => return Ok(start_failed(error)),
        };
        let Some((key, receiver)) = admitted.lock().take() else {
            // Another start of the same workflow won the race since the look above.
            return Ok(start_failed(Error::Unavailable(
                "Workflow was not started: another start of it came first; retry the request"
                    .into(),
            )));
        };
        Ok(
            match self
                .answer(
                    key,
                    update_id,
                    Found::Waiting(receiver),
                    wanted,
                    deadline,
                    limits.long_poll,
                )
                .await
            {
                Ok(answer) => UpdateWithStart::Done {
                    start: Box::new(response),
                    update: Box::new(answer.response(&namespace.name, &request_id)),
                },
                Err(error) => UpdateWithStart::Failed {
                    start: OperationStatus::Ok,
                    update: OperationStatus::Failed(error),
                },
            },
        )
    }

    pub(crate) async fn poll_update(
        &self,
        namespace_id: &str,
        request: ws::PollWorkflowExecutionUpdateRequest,
        deadline: Instant,
    ) -> Result<Answer> {
        let update_ref = request.update_ref.clone().unwrap_or_default();
        let execution = update_ref.workflow_execution.clone().unwrap_or_default();
        let key = self.resolve(namespace_id, &execution).await?;
        let update_id = update_ref.update_id.clone();
        let wanted = wanted_stage(request.wait_policy.as_ref());
        let long_poll = self.update_limits.read().long_poll;
        let found = self
            .update(&key, |state, _env| {
                match self.known_update(&key, state, &update_id) {
                    Some(found) => Ok((core::Transition::default(), found)),
                    None => Err(Error::not_found(format!(
                        "update \"{update_id}\" not found"
                    ))),
                }
            })
            .await?;
        self.answer(key, update_id, found, wanted, deadline, long_poll)
            .await
    }

    /// An update the run knows: accepted or completed in its state, or in flight here. Call
    /// under the run's lock.
    fn known_update(
        &self,
        key: &WorkflowKey,
        state: &core::state::MutableState,
        update_id: &str,
    ) -> Option<Found> {
        if let Some(info) = state.updates.get(update_id) {
            if info.completed_event_id > 0 {
                return Some(Found::CompletedAt(info.completed_event_id));
            }
            if !state.is_running() {
                return Some(Found::Outcome(Box::new(failure_outcome(
                    accepted_update_completed_workflow_failure(),
                ))));
            }
            return Some(Found::Waiting(self.updates.follow_accepted(key, update_id)));
        }
        self.updates.subscribe(key, update_id).map(Found::Waiting)
    }

    async fn answer(
        &self,
        key: WorkflowKey,
        update_id: String,
        found: Found,
        wanted: Stage,
        deadline: Instant,
        long_poll: std::time::Duration,
    ) -> Result<Answer> {
        let (stage, outcome) = match found {
            Found::CompletedAt(event_id) => {
                let events = self.read_events(&key, event_id, event_id + 1, 1).await?;
                let outcome = events.into_iter().find_map(|event| match event.attributes {
                    Some(Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a)) => {
                        a.outcome
                    }
                    _ => None,
                });
                (Stage::Completed, outcome)
            }
            Found::Outcome(outcome) => (Stage::Completed, Some(*outcome)),
            Found::Waiting(receiver) => wait(receiver, wanted, deadline, long_poll).await?,
        };
        Ok(Answer {
            key,
            update_id,
            stage,
            outcome,
        })
    }
}

/// Waits until the update reaches `wanted` (or ends), the server's long poll runs out (the
/// stage reached so far is the answer), or the caller's deadline comes first (an error, as a
/// cancelled call).
async fn wait(
    mut receiver: watch::Receiver<UpdateStatus>,
    wanted: Stage,
    deadline: Instant,
    long_poll: std::time::Duration,
) -> Result<(Stage, Option<Outcome>)> {
    let server_end = tokio::time::Instant::now() + long_poll;
    // A little before the caller's deadline, so that the caller gets DEADLINE_EXCEEDED from
    // here rather than the transport's cancellation.
    let caller_end = tokio::time::Instant::from_std(deadline)
        .checked_sub(std::time::Duration::from_millis(50))
        .unwrap_or_else(tokio::time::Instant::now);
    let until = server_end.min(caller_end);
    loop {
        let status = receiver.borrow_and_update().clone();
        if status.reached(wanted) {
            return match status {
                UpdateStatus::Completed(outcome) => Ok((Stage::Completed, Some(*outcome))),
                UpdateStatus::Aborted(error) => Err(error),
                other => Ok((other.stage(), None)),
            };
        }
        match tokio::time::timeout_at(until, receiver.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => {
                return Err(Error::Unavailable(
                    "workflow update was lost; retry the request".into(),
                ));
            }
            Err(_) if caller_end <= server_end => {
                return Err(Error::DeadlineExceeded("context deadline exceeded".into()));
            }
            Err(_) => return Ok((status.stage(), None)),
        }
    }
}
