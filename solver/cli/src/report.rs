//! How a failed command reads on stderr: its error, then each cause whose
//! message the lines above do not already hold.
//!
//! Why not the `Debug` form that `main` returning `anyhow::Result` prints: the
//! library's errors name their source in their own message (so a message alone
//! says everything), and `Debug` lists every source again under "Caused by",
//! then a stack trace whenever `RUST_BACKTRACE` is set — noise for a typo in a
//! config file. Panics still print their backtraces.

/// The lines printed for `error`: `error: <message>`, then `  caused by:
/// <message>` for each cause not already said.
pub(crate) fn error_report(error: &anyhow::Error) -> String {
    let mut report = format!("error: {error}");
    for cause in error.chain().skip(1) {
        let message = cause.to_string();
        if !report.contains(&message) {
            report.push_str("\n  caused by: ");
            report.push_str(&message);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct InFile {
        path: &'static str,
        #[source]
        source: std::num::ParseIntError,
    }

    /// The number of times `needle` occurs in `text`.
    fn count(text: &str, needle: &str) -> usize {
        text.matches(needle).count()
    }

    #[test]
    fn each_message_is_said_once() {
        let parse = "x".parse::<i32>().unwrap_err();
        let parse_message = parse.to_string();
        // A cause named in its error's message, under a context that does not name it.
        let error = anyhow::Error::new(InFile {
            path: "run/config.toml",
            source: parse,
        })
        .context("reading the scenario");
        let report = error_report(&error);
        assert!(
            report.starts_with("error: reading the scenario\n"),
            "{report}"
        );
        assert_eq!(count(&report, &parse_message), 1, "{report}");
        assert_eq!(count(&report, "run/config.toml"), 1, "{report}");
        assert_eq!(count(&report, "caused by"), 1, "{report}");
        // A chain whose first message holds everything: one line.
        let alone = anyhow::Error::new(InFile {
            path: "a.toml",
            source: "".parse::<i32>().unwrap_err(),
        });
        assert_eq!(error_report(&alone), format!("error: {alone}"));
    }
}
