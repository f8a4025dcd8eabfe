//! Errors of the vSphere client. Each carries what failed and where ("vCenter vc01: login:
//! …"); none carries a password or a session cookie.

/// A vSphere fault: its type (`NotAuthenticated`, `InvalidLogin`, …) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: String,
    pub message: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "fault {}", self.kind)
        } else {
            write!(f, "fault {}: {}", self.kind, self.message)
        }
    }
}

impl Fault {
    /// The session is gone (expired, or vCenter restarted): log in again and retry.
    pub fn is_not_authenticated(&self) -> bool {
        self.kind == "NotAuthenticated"
    }
}

/// What reading a response can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Fault(Fault),
    #[error("malformed response: {0}")]
    Malformed(String),
    /// One text node (or tag) of the answer is longer than the limit, in bytes: reading stops
    /// there rather than hold it.
    #[error("a single value of the answer is larger than the limit of {0} bytes")]
    TooLarge(u64),
}

/// What one SOAP call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Fault(Fault),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("HTTP status {0}")]
    Status(u16),
    /// Connecting failed (refused, unreachable, DNS).
    #[error("{0}")]
    Connect(String),
    /// No answer within the call's timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Transport(String),
    /// The answer was larger than `max_response_size`.
    #[error("answer larger than the limit of {0} bytes (max_response_size)")]
    TooLarge(u64),
    /// One value of a streamed answer was larger than the limit of a single text node.
    #[error("a single value of the answer is larger than the limit of {0} bytes")]
    ValueTooLarge(u64),
    /// A login is not tried: vCenter refused the credentials recently.
    #[error("not logging in again for {}s after vCenter refused the credentials (InvalidLogin); fix the password or username", .0.as_secs())]
    LoginSuspended(std::time::Duration),
    /// A property came back as a `NotAuthenticated` fault inside a 200 answer.
    #[error("session lost: {0}")]
    SessionLost(String),
    /// The endpoint does not serve this API at all (the Automation REST API of a bare ESXi
    /// host: 404 on every session path); what is missing is in the message.
    #[error("{0}")]
    Absent(String),
}

impl From<ParseError> for CallError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Fault(f) => CallError::Fault(f),
            ParseError::Malformed(m) => CallError::Malformed(m),
            ParseError::TooLarge(limit) => CallError::ValueTooLarge(limit),
        }
    }
}

impl CallError {
    /// The kind of failure, as the `kind` label of `vsphere_call_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Fault(_) | CallError::SessionLost(_) | CallError::LoginSuspended(_) => {
                "fault"
            }
            CallError::Malformed(_) => "malformed",
            CallError::Status(_) | CallError::Absent(_) => "http",
            CallError::Connect(_) => "connect",
            CallError::Timeout(_) => "timeout",
            CallError::Transport(_) => "transport",
            CallError::TooLarge(_) | CallError::ValueTooLarge(_) => "too_large",
        }
    }

    /// True when vCenter refused the credentials.
    pub fn is_invalid_login(&self) -> bool {
        matches!(self, CallError::Fault(f) if f.kind == "InvalidLogin")
    }

    /// True when logging in again may cure it.
    pub fn is_not_authenticated(&self) -> bool {
        match self {
            CallError::Fault(f) => f.is_not_authenticated(),
            CallError::SessionLost(_) => true,
            _ => false,
        }
    }
}

/// An error of the client, naming the vCenter and the call that failed.
#[derive(Debug, thiserror::Error)]
#[error("vCenter {vcenter}: {call}: {failure}")]
pub struct Error {
    pub vcenter: String,
    pub call: &'static str,
    /// Part of the message rather than a `#[source]`, so a printed chain says it once.
    pub failure: CallError,
    /// When the failed request was sent; `None` where no request failed (an answer that did
    /// not parse, a missing manager). A request sent before vCenter recovered that fails after
    /// it belongs to the incident it was sent in ([`super::Client::claim_incident`]).
    pub sent: Option<std::time::Instant>,
}
