//! Retry decisions shared by activities and workflows: Temporal's exponential backoff without
//! jitter, its stop conditions, and the default policy values.

use sundial_proto::api::common::v1::RetryPolicy;
use sundial_proto::api::enums::v1::{RetryState, TimeoutType};
use sundial_proto::api::failure::v1::{Failure, failure::FailureInfo};

use crate::ctx::Limits;
use crate::util::{check_duration, duration, duration_ms};

/// Fills the unset fields of a retry policy with the defaults.
pub fn with_defaults(policy: Option<RetryPolicy>, limits: &Limits) -> RetryPolicy {
    let mut policy = policy.unwrap_or_default();
    let mut initial_ms = duration_ms(policy.initial_interval.as_ref());
    if initial_ms == 0 {
        initial_ms = limits.default_retry_initial_interval_ms;
        policy.initial_interval = duration(initial_ms);
    }
    if policy.backoff_coefficient == 0.0 {
        policy.backoff_coefficient = limits.default_retry_backoff_coefficient;
    }
    if duration_ms(policy.maximum_interval.as_ref()) == 0 {
        policy.maximum_interval =
            duration(initial_ms * limits.default_retry_maximum_interval_factor);
    }
    policy
}

/// Checks a policy as Temporal does; the message is the InvalidArgument text.
pub fn validate(policy: &RetryPolicy) -> Result<(), String> {
    if policy.maximum_attempts == 1 {
        return Ok(());
    }
    let initial_ms = duration_ms(policy.initial_interval.as_ref());
    let maximum_ms = duration_ms(policy.maximum_interval.as_ref());
    check_duration(
        "InitialInterval set on retry policy",
        policy.initial_interval.as_ref(),
    )?;
    if policy.backoff_coefficient < 1.0 {
        return Err("BackoffCoefficient cannot be less than 1 on retry policy.".into());
    }
    check_duration(
        "MaximumInterval set on retry policy",
        policy.maximum_interval.as_ref(),
    )?;
    if maximum_ms > 0 && maximum_ms < initial_ms {
        return Err("MaximumInterval cannot be less than InitialInterval on retry policy.".into());
    }
    if policy.maximum_attempts < 0 {
        return Err("MaximumAttempts cannot be negative on retry policy.".into());
    }
    for error_type in &policy.non_retryable_error_types {
        if let Some(timeout) = error_type.strip_prefix("TemporalTimeout:")
            && !matches!(
                timeout,
                "StartToClose" | "ScheduleToStart" | "ScheduleToClose" | "Heartbeat"
            )
        {
            return Err(format!("Invalid timeout type value: {timeout}."));
        }
    }
    Ok(())
}

/// The delay before the next attempt, or why there is none. `attempt` is the attempt that
/// just failed; `expiration_ms` is the absolute deadline of all attempts (0: none).
pub fn next_delay(
    policy: &RetryPolicy,
    attempt: i32,
    failure: Option<&Failure>,
    timeout_type: Option<TimeoutType>,
    now_ms: i64,
    expiration_ms: i64,
) -> Result<i64, RetryState> {
    if let Some(timeout) = timeout_type {
        match timeout {
            TimeoutType::ScheduleToStart | TimeoutType::ScheduleToClose => {
                return Err(RetryState::Timeout);
            }
            TimeoutType::StartToClose => {
                if policy
                    .non_retryable_error_types
                    .iter()
                    .any(|t| t == "TemporalTimeout:StartToClose")
                {
                    return Err(RetryState::NonRetryableFailure);
                }
            }
            TimeoutType::Heartbeat => {
                if policy
                    .non_retryable_error_types
                    .iter()
                    .any(|t| t == "TemporalTimeout:Heartbeat")
                {
                    return Err(RetryState::NonRetryableFailure);
                }
            }
            TimeoutType::Unspecified => {}
        }
    }
    let mut next_retry_override_ms = 0;
    if let Some(failure) = failure {
        match failure.failure_info.as_ref() {
            Some(FailureInfo::ApplicationFailureInfo(info)) => {
                if info.non_retryable || policy.non_retryable_error_types.contains(&info.r#type) {
                    return Err(RetryState::NonRetryableFailure);
                }
                next_retry_override_ms = duration_ms(info.next_retry_delay.as_ref());
            }
            Some(FailureInfo::CanceledFailureInfo(_))
            | Some(FailureInfo::TerminatedFailureInfo(_)) => {
                return Err(RetryState::NonRetryableFailure);
            }
            Some(FailureInfo::ServerFailureInfo(info)) if info.non_retryable => {
                return Err(RetryState::NonRetryableFailure);
            }
            _ => {}
        }
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return Err(RetryState::MaximumAttemptsReached);
    }
    let initial_ms = duration_ms(policy.initial_interval.as_ref()).max(1) as f64;
    let coefficient = policy.backoff_coefficient.max(1.0);
    let mut delay = initial_ms * coefficient.powi((attempt - 1).max(0));
    let maximum_ms = duration_ms(policy.maximum_interval.as_ref());
    if maximum_ms > 0 {
        delay = delay.min(maximum_ms as f64);
    }
    let mut delay_ms = delay as i64;
    if next_retry_override_ms > 0 {
        delay_ms = next_retry_override_ms;
    }
    if expiration_ms > 0 && now_ms + delay_ms > expiration_ms {
        return Err(RetryState::Timeout);
    }
    Ok(delay_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: i64, coefficient: f64, maximum_ms: i64, attempts: i32) -> RetryPolicy {
        RetryPolicy {
            initial_interval: duration(initial_ms),
            backoff_coefficient: coefficient,
            maximum_interval: duration(maximum_ms),
            maximum_attempts: attempts,
            non_retryable_error_types: vec!["Fatal".into()],
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = policy(1000, 2.0, 5000, 0);
        let delays: Vec<i64> = (1..=5)
            .map(|attempt| next_delay(&policy, attempt, None, None, 0, 0).unwrap())
            .collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn stop_conditions() {
        let policy = policy(1000, 2.0, 5000, 3);
        assert_eq!(
            next_delay(&policy, 3, None, None, 0, 0),
            Err(RetryState::MaximumAttemptsReached)
        );
        let fatal = crate::util::application_failure("boom", "Fatal", false);
        assert_eq!(
            next_delay(&policy, 1, Some(&fatal), None, 0, 0),
            Err(RetryState::NonRetryableFailure)
        );
        assert_eq!(
            next_delay(&policy, 1, None, None, 10_000, 10_500),
            Err(RetryState::Timeout)
        );
        assert_eq!(
            next_delay(&policy, 1, None, Some(TimeoutType::ScheduleToStart), 0, 0),
            Err(RetryState::Timeout)
        );
    }

    #[test]
    fn defaults_fill_unset_fields() {
        let filled = with_defaults(None, &Limits::default());
        assert_eq!(duration_ms(filled.initial_interval.as_ref()), 1000);
        assert_eq!(filled.backoff_coefficient, 2.0);
        assert_eq!(duration_ms(filled.maximum_interval.as_ref()), 100_000);
        assert!(validate(&filled).is_ok());
        assert!(validate(&policy(2000, 2.0, 1000, 0)).is_err());
        assert!(validate(&policy(1000, 0.5, 1000, 0)).is_err());
    }
}
