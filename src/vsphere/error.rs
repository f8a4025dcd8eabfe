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
    #[error("{0}")]
    Transport(String),
    /// A property came back as a `NotAuthenticated` fault inside a 200 answer.
    #[error("session lost: {0}")]
    SessionLost(String),
}

impl From<ParseError> for CallError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Fault(f) => CallError::Fault(f),
            ParseError::Malformed(m) => CallError::Malformed(m),
        }
    }
}

impl CallError {
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
}
