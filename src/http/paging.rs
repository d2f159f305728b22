//! Paging parameters as clients send them, checked before they reach the database.

use serde::Deserialize;

use crate::core::listing::{PAGE_MAX, Window};
use crate::error::Error;

/// `?page=&limit=`: a 1-based page of `limit` items (10 by default, at most `PAGE_MAX`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<u64>,
    pub limit: Option<u64>,
}

impl PageQuery {
    pub fn window(self) -> Result<Window, Error> {
        page_window(self.page, self.limit)
    }
}

/// `?skip=&limit=`: `limit` items (at most `PAGE_MAX`) after the first `skip`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct SkipQuery {
    pub skip: Option<u64>,
    pub limit: Option<u64>,
}

impl SkipQuery {
    /// The window asked for, `default_limit` items when no limit is given.
    pub fn window(self, default_limit: u64) -> Result<Window, Error> {
        let limit = self.limit.unwrap_or(default_limit);
        if limit > PAGE_MAX {
            return Err(Error::LimitTooLarge(PAGE_MAX));
        }
        if limit == 0 {
            return Err(Error::invalid("limit must be at least 1"));
        }
        let skip = self.skip.unwrap_or(0);
        if skip > i64::MAX as u64 {
            return Err(Error::invalid("skip is too large"));
        }
        Ok(Window { skip, limit })
    }
}

/// The window of a 1-based `page` (the first by default) of `limit` items (10 by default);
/// pages so far out that they cannot exist are refused rather than wrapped.
pub fn page_window(page: Option<u64>, limit: Option<u64>) -> Result<Window, Error> {
    let (page, limit) = (page.unwrap_or(1), limit.unwrap_or(10));
    if limit > PAGE_MAX {
        return Err(Error::LimitTooLarge(PAGE_MAX));
    }
    if page == 0 || limit == 0 {
        return Err(Error::invalid(format!(
            "page starts at 1 and limit must be between 1 and {PAGE_MAX}"
        )));
    }
    let skip = (page - 1)
        .checked_mul(limit)
        .filter(|skip| *skip <= i64::MAX as u64)
        .ok_or_else(|| Error::invalid("page is too large"))?;
    Ok(Window { skip, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        assert_eq!(
            PageQuery::default().window().unwrap(),
            Window { skip: 0, limit: 10 }
        );
        let window = |page, limit| page_window(Some(page), Some(limit));
        assert_eq!(
            window(3, 10).unwrap(),
            Window {
                skip: 20,
                limit: 10
            }
        );
        assert!(window(0, 10).is_err());
        assert!(window(1, PAGE_MAX + 1).is_err());
        assert!(window(u64::MAX, 2).is_err());
        assert!(window(9_223_372_036_854_775_807, 2).is_err());
        let skip = |skip, limit| SkipQuery { skip, limit }.window(15);
        assert_eq!(skip(None, None).unwrap(), Window { skip: 0, limit: 15 });
        assert_eq!(
            skip(Some(30), Some(100)).unwrap(),
            Window {
                skip: 30,
                limit: 100
            }
        );
        assert!(matches!(
            skip(None, Some(101)),
            Err(Error::LimitTooLarge(100))
        ));
        assert!(skip(None, Some(0)).is_err());
    }
}
