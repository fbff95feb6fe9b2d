//! `Failure`, every way a command can fail, and the exit status each
//! means. The API's own message and code are kept as the gateway sent them.

use std::fmt;

use serde_json::Value;

/// What went wrong on one gateway, or before any was asked.
#[derive(Debug)]
pub enum Failure {
    /// The gateway answered with its error envelope: status, code, message.
    Api {
        status: u16,
        code: String,
        message: String,
        body: Value,
    },
    /// No answer: connection refused, TLS, a cut stream, a timeout.
    Transport(String),
    /// Here, before or after the request: configuration, key file, output.
    Local(String),
}

impl Failure {
    /// A refusal of the target, not of the request: the command was valid
    /// but this process may not be acted on (or is no longer the one seen).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Failure::Api { code, .. } if matches!(code.as_str(),
            "policy_denied" | "other_key_job" | "identity_changed" | "no_such_process"))
    }

    /// The error as a JSON object, the API's envelope when there is one.
    pub fn to_json(&self) -> Value {
        match self {
            Failure::Api { body, .. } => body.clone(),
            Failure::Transport(m) => {
                serde_json::json!({"result": "error", "code": "transport", "message": m})
            }
            Failure::Local(m) => {
                serde_json::json!({"result": "error", "code": "local", "message": m})
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Api {
                status,
                code,
                message,
                ..
            } => write!(f, "{message} ({code}, HTTP {status})"),
            Failure::Transport(m) | Failure::Local(m) => f.write_str(m),
        }
    }
}

/// The exit status of a whole command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything asked for was done.
    Done = 0,
    /// Some targets (processes, or gateways of several) were refused or
    /// failed; the others were done.
    Partial = 2,
    /// The command failed.
    Error = 1,
}

impl Status {
    /// The worse of two, an error over a partial result.
    pub fn and(self, other: Status) -> Status {
        use Status::*;
        match (self, other) {
            (Error, _) | (_, Error) => Error,
            (Partial, _) | (_, Partial) => Partial,
            _ => Done,
        }
    }
}
