//! How the end of a command is reported on the error stream.

use serde::Serialize;

use super::{ExecOutcome, Operation, ProtocolVersion};

/// `metav1.Status`, with Go's field order and omissions, so the bytes match the kubelet's.
#[derive(Serialize)]
struct Status {
    metadata: ListMeta,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Serialize)]
struct ListMeta {}

#[derive(Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
}

fn status(operation: Operation, outcome: &ExecOutcome) -> Status {
    match outcome {
        ExecOutcome::Exited(0) => Status {
            metadata: ListMeta {},
            status: "Success",
            message: None,
            reason: None,
            details: None,
            code: None,
        },
        ExecOutcome::Exited(code) => Status {
            metadata: ListMeta {},
            status: "Failure",
            message: Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            reason: Some("NonZeroExitCode"),
            details: Some(Details {
                causes: vec![Cause {
                    reason: Some("ExitCode"),
                    message: code.to_string(),
                }],
            }),
            code: None,
        },
        ExecOutcome::Error(e) => {
            // apierrors.NewInternalError, as the kubelet wraps executor and attacher failures.
            let err = match operation {
                Operation::Exec => format!("error executing command in container: {e}"),
                Operation::Attach => format!("error attaching to container: {e}"),
            };
            Status {
                metadata: ListMeta {},
                status: "Failure",
                message: Some(format!("Internal error occurred: {err}")),
                reason: Some("InternalError"),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: None,
                        message: err,
                    }],
                }),
                code: Some(500),
            }
        }
    }
}

/// What a protocol writes on its error channel when the command ends, whatever carries it
/// (a SPDY stream or WebSocket channel 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusForm {
    /// Nothing (SPDY v1, whose error stream is reset at the start).
    Nothing,
    /// The failure message as text, nothing on success (the kubelet's v1 status writer).
    FailureText,
    /// The `metav1.Status` as JSON, success included (the v4 status writer).
    Json,
}

/// The bytes to write on the error channel in `form`, if any.
pub(crate) fn encode(
    form: StatusForm,
    operation: Operation,
    outcome: &ExecOutcome,
) -> Option<Vec<u8>> {
    let status = status(operation, outcome);
    match form {
        // Plain structs of strings and numbers always serialize.
        StatusForm::Json => serde_json::to_vec(&status).ok(),
        StatusForm::FailureText => status.message.map(String::into_bytes),
        StatusForm::Nothing => None,
    }
}

/// The bytes to write on the SPDY error stream, if any: JSON from v4 on; before that the
/// failure message as text and nothing on success; nothing on v1, whose error stream is
/// already reset.
pub(super) fn report(
    version: ProtocolVersion,
    operation: Operation,
    outcome: &ExecOutcome,
) -> Option<Vec<u8>> {
    let form = if version.reports_status_json() {
        StatusForm::Json
    } else if version == ProtocolVersion::V1 {
        StatusForm::Nothing
    } else {
        StatusForm::FailureText
    };
    encode(form, operation, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(version: ProtocolVersion, outcome: ExecOutcome) -> Option<String> {
        report(version, Operation::Exec, &outcome).map(|b| String::from_utf8(b).expect("utf-8"))
    }

    #[test]
    fn v4_success() {
        assert_eq!(
            text(ProtocolVersion::V4, ExecOutcome::Exited(0)).as_deref(),
            Some(r#"{"metadata":{},"status":"Success"}"#)
        );
    }

    #[test]
    fn v5_non_zero_exit_code() {
        assert_eq!(
            text(ProtocolVersion::V5, ExecOutcome::Exited(3)).as_deref(),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
            )
        );
    }

    #[test]
    fn v4_internal_error() {
        assert_eq!(
            text(
                ProtocolVersion::V4,
                ExecOutcome::Error("no such container".into())
            )
            .as_deref(),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: no such container","reason":"InternalError","details":{"causes":[{"message":"error executing command in container: no such container"}]},"code":500}"#
            )
        );
    }

    #[test]
    fn attach_failures_say_attaching() {
        let report = report(
            ProtocolVersion::V4,
            Operation::Attach,
            &ExecOutcome::Error("no main process".into()),
        )
        .expect("a status");
        let report = String::from_utf8(report).expect("utf-8");
        assert!(
            report.contains(
                r#""message":"Internal error occurred: error attaching to container: no main process""#
            ),
            "{report}"
        );
    }

    #[test]
    fn older_versions_write_text_on_failure_only() {
        for v in [ProtocolVersion::V2, ProtocolVersion::V3] {
            assert_eq!(text(v, ExecOutcome::Exited(0)), None);
            assert_eq!(
                text(v, ExecOutcome::Exited(2)).as_deref(),
                Some("command terminated with non-zero exit code: exit status 2")
            );
        }
        assert_eq!(text(ProtocolVersion::V1, ExecOutcome::Exited(2)), None);
    }
}
