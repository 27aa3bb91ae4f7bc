//! The timer family: started by a command, fired by the timer queue, canceled by a command.

use sundial_common::Result;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    HistoryEvent, TimerFiredEventAttributes, TimerStartedEventAttributes,
};

use crate::ctx::{Env, Mutation, Transition};
use crate::state::{MutableState, TimerInfo};
use crate::tasks::{Task, TaskType};
use crate::util::{duration_ms, timestamp_ms};
use crate::workflow::ensure_workflow_task;

pub(crate) fn apply_started(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &TimerStartedEventAttributes,
) {
    let expiry_ms = timestamp_ms(event.event_time.as_ref())
        + duration_ms(attributes.start_to_fire_timeout.as_ref());
    state.timers.insert(
        attributes.timer_id.clone(),
        TimerInfo {
            timer_id: attributes.timer_id.clone(),
            started_event_id: event.event_id,
            expiry_ms,
        },
    );
}

pub(crate) fn timer_task(timer: &TimerInfo) -> Task {
    let mut task = Task::new(TaskType::UserTimer, timer.expiry_ms, timer.started_event_id);
    task.timer_id = timer.timer_id.clone();
    task
}

pub fn fire_timer(
    state: &mut MutableState,
    env: &Env,
    timer_id: &str,
    started_event_id: i64,
) -> Result<Transition> {
    if !state.is_running() {
        return Ok(Transition::default());
    }
    match state.timers.get(timer_id) {
        Some(timer)
            if timer.started_event_id == started_event_id && timer.expiry_ms <= env.now_ms => {}
        _ => return Ok(Transition::default()),
    }
    let mut mutation = Mutation::new(state, env);
    mutation.add(Attributes::TimerFiredEventAttributes(
        TimerFiredEventAttributes {
            timer_id: timer_id.to_string(),
            started_event_id,
        },
    ));
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}
