//! Request plumbing shared by every dialect: who is calling, bodies, queries and paths, ids,
//! paging, and one error type whose wire shape each dialect chooses. A dialect writes only its
//! [`Wire`]: where its clients put their token and how its errors look.

mod error;
mod extract;
pub mod ids;
pub mod origins;
pub mod paging;
pub mod time;

pub use error::{HttpError, Unreadable, Wire, method_not_allowed, status};
pub use extract::{Body, Caller, Path, Query};
