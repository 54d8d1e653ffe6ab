//! The demo's output: one row per step.

/// One step of the scenario, as printed.
pub(super) struct Row {
    /// What the step shows.
    pub(super) scenario: &'static str,
    /// What was sent (route and who).
    pub(super) sent: String,
    /// `delivered` or `refused`.
    pub(super) outcome: &'static str,
    /// The error code, or `-`.
    pub(super) code: String,
    /// The reply or the reason.
    pub(super) detail: String,
    /// Whether the bus behaved as it promises.
    pub(super) as_expected: bool,
}

const DETAIL_WIDTH: usize = 64;

/// Prints the rows as an aligned table.
pub(super) fn print(rows: &[Row]) {
    let width =
        |f: fn(&Row) -> usize, title: &str| rows.iter().map(f).max().unwrap_or(0).max(title.len());
    let (ws, wt, wc) = (
        width(|r| r.scenario.len(), "scenario"),
        width(|r| r.sent.len(), "sent"),
        width(|r| r.code.len(), "code"),
    );
    println!(
        "{:<3} {:<ws$}  {:<wt$}  {:<9}  {:<wc$}  reply or reason",
        "#", "scenario", "sent", "outcome", "code"
    );
    println!("{}", "-".repeat(3 + ws + wt + wc + 9 + DETAIL_WIDTH + 10));
    for (i, r) in rows.iter().enumerate() {
        let mark = if r.as_expected {
            ""
        } else {
            "  <-- UNEXPECTED"
        };
        println!(
            "{:<3} {:<ws$}  {:<wt$}  {:<9}  {:<wc$}  {}{mark}",
            i + 1,
            r.scenario,
            r.sent,
            r.outcome,
            r.code,
            shorten(&r.detail)
        );
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= DETAIL_WIDTH {
        return text.to_owned();
    }
    let cut: String = text.chars().take(DETAIL_WIDTH - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(shorten(&long).chars().count(), 64);
    }
}
