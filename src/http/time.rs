//! Dates as the dialects write them.

use bson::DateTime;

/// ISO 8601 in UTC with milliseconds: `2025-09-22T11:37:29.500Z` (what JavaScript writes).
pub fn iso_millis(at: DateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_time_0_3().format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_milliseconds() {
        let at = DateTime::from_millis(1_758_505_000_123);
        assert_eq!(iso_millis(at), "2025-09-22T01:36:40.123Z");
    }
}
