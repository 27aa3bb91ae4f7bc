//! Conversions between protobuf time types and milliseconds, and failure builders.

use sundial_proto::api::common::v1::{Payload, Payloads};
use sundial_proto::api::failure::v1::{
    ApplicationFailureInfo, Failure, ServerFailureInfo, TimeoutFailureInfo, failure::FailureInfo,
};
use sundial_proto::prost_types::{Duration, Timestamp};

/// The size Temporal counts for payloads against `limit.blobSize.error`: data plus metadata values.
pub fn payloads_size(payloads: Option<&Payloads>) -> usize {
    payloads
        .map(|p| p.payloads.iter().map(payload_size).sum())
        .unwrap_or(0)
}

pub fn payload_size(payload: &Payload) -> usize {
    payload.data.len() + payload.metadata.values().map(Vec::len).sum::<usize>()
}

pub fn duration_ms(duration: Option<&Duration>) -> i64 {
    match duration {
        Some(duration) => {
            duration.seconds.saturating_mul(1000) + i64::from(duration.nanos) / 1_000_000
        }
        None => 0,
    }
}

/// A duration field, with zero written as unset, as Temporal does.
pub fn duration(ms: i64) -> Option<Duration> {
    if ms <= 0 {
        return None;
    }
    Some(Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// A duration field that is always present, zero meaning "no limit": how Temporal writes the
/// timeouts it normalises (activity timeouts), which SDKs read without checking for presence.
pub fn present_duration(ms: i64) -> Option<Duration> {
    Some(duration(ms).unwrap_or_default())
}

/// Checks a request's duration as Temporal does: the error is "invalid {what}: {why}".
pub fn check_duration(what: &str, duration: Option<&Duration>) -> Result<(), String> {
    match duration {
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            Err(format!("invalid {what}: negative duration"))
        }
        Some(d) if d.nanos >= 1_000_000_000 => Err(format!("invalid {what}: invalid duration")),
        _ => Ok(()),
    }
}

pub fn timestamp(ms: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub fn timestamp_ms(timestamp: Option<&Timestamp>) -> i64 {
    match timestamp {
        Some(timestamp) => timestamp.seconds * 1000 + i64::from(timestamp.nanos) / 1_000_000,
        None => 0,
    }
}

/// Whether a duration is valid for Temporal: non-negative seconds and nanos in range.
pub fn valid_duration(duration: Option<&Duration>) -> bool {
    check_duration("duration", duration).is_ok()
}

pub fn server_failure(message: impl Into<String>, non_retryable: bool) -> Failure {
    Failure {
        message: message.into(),
        source: String::new(),
        failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
            non_retryable,
        })),
        ..Default::default()
    }
}

pub fn timeout_failure(
    timeout_type: i32,
    message: impl Into<String>,
    details: Option<Payloads>,
) -> Failure {
    Failure {
        message: message.into(),
        source: "Server".to_string(),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type,
            last_heartbeat_details: details,
        })),
        ..Default::default()
    }
}

pub fn application_failure(
    message: impl Into<String>,
    failure_type: impl Into<String>,
    non_retryable: bool,
) -> Failure {
    Failure {
        message: message.into(),
        source: String::new(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: failure_type.into(),
                non_retryable,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}
