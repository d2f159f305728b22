//! The core's one error type. Each dialect maps it to its own wire shape and status codes at
//! the edge (`crate::http`, and the realtime layer's close codes).

use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller gave no credentials at all.
    #[error("authentication required")]
    MissingCredentials,
    /// The credentials are wrong, expired or revoked.
    #[error("invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// The request is well-formed but asks for nothing to change.
    #[error("{0}")]
    NotModified(Cow<'static, str>),
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// Invalid fields of a form, each with what is wrong with it.
    #[error("{}", describe(.0))]
    Fields(Vec<(&'static str, String)>),
    #[error("too many requests; slow down")]
    RateLimited,
    /// The path exists, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A read asked for more items at once than any may.
    #[error("limit must be at most {0}")]
    LimitTooLarge(u64),
    /// A part this request needs is not configured on this server.
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
    #[error("database error: {0}")]
    Database(mongodb::error::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid(message.into())
    }

    /// What the client may be told. A server fault is logged here and its details withheld.
    pub fn public_message(&self) -> String {
        if self.is_server_fault() {
            tracing::error!(error = %self, "request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        }
    }

    /// Whether this is a fault of the server rather than of the request.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Internal(_))
    }
}

/// What a client is told while the database cannot be reached.
pub const DATABASE_UNAVAILABLE: &str = "the database is unavailable; try again shortly";

impl From<mongodb::error::Error> for Error {
    /// A database that cannot be reached is an outage, answered 503 at once so clients retry;
    /// anything else it says is a fault of this server.
    fn from(err: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        match err.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. } => {
                tracing::warn!("database unreachable: {err}");
                metrics::counter!(crate::telemetry::DATABASE_ERRORS, "kind" => "unreachable")
                    .increment(1);
                Self::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            _ => {
                metrics::counter!(crate::telemetry::DATABASE_ERRORS, "kind" => "other")
                    .increment(1);
                Self::Database(err)
            }
        }
    }
}

fn describe(fields: &[(&'static str, String)]) -> String {
    let each: Vec<String> = fields.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    each.join("; ")
}

/// A write that a unique index may refuse because what it writes exists already.
pub trait UniqueWrite<T> {
    /// The write's outcome, or `None` when a unique index refused it; other failures are
    /// errors.
    fn unless_duplicate(self) -> Result<Option<T>>;
}

impl<T> UniqueWrite<T> for std::result::Result<T, mongodb::error::Error> {
    fn unless_duplicate(self) -> Result<Option<T>> {
        match self {
            Ok(done) => Ok(Some(done)),
            Err(e) if is_duplicate_key(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The server's code for a write a unique index refused.
pub const DUPLICATE_KEY: i32 = 11000;

pub(crate) fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|e| e.code == DUPLICATE_KEY)),
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}
