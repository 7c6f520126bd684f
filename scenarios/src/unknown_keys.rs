//! Every key of a TOML file that its schema does not have, in one report.
//!
//! Each table of a scenario or a PDE definition rejects unknown keys
//! (`deny_unknown_fields`), so that a typo is an error rather than a setting
//! silently ignored; but serde stops at the first, and a file with three
//! typos would take three rounds to mend. Here the parsed document loses each reported key in turn and is
//! read again, until it reads or fails for another reason: every unknown key
//! is then named with its line and column and the parser's message (which
//! lists the keys its table takes), and the other reason after them.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use tessera_constraints::expr::{Origin, Position};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// One problem met reading a file: an unknown key, or what stopped the
/// reading after the unknown keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// Where in the file, if the parser says.
    pub position: Option<Position>,
    /// The parser's message ("unknown field `k`, expected one of …").
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some(at) => write!(
                f,
                "line {}, column {}: {}",
                at.line, at.column, self.message
            ),
            None => f.write_str(&self.message),
        }
    }
}

/// What reading a `T` from `text` meets: its unknown keys in the file's
/// order, then the first problem of another kind, if any (an unknown key
/// the parser gives no position for is one: it cannot be removed). Empty
/// when `text` is not TOML (the parser's own error says where) or reads.
pub(crate) fn unknown_keys<T: DeserializeOwned>(text: &str) -> Vec<Problem> {
    let Ok(mut document) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    // Each round but the last removes one key of the document, so it ends.
    let last = loop {
        let Err(error) = T::deserialize(document.clone().into_deserializer()) else {
            break None;
        };
        let message = error.message().trim_end().to_owned();
        let name = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next());
        let removed = (error.span().zip(name))
            .and_then(|(span, name)| remove_key(document.get_mut(), &span, name));
        let at = removed.as_ref().or(error.span().as_ref()).map(|s| s.start);
        let problem = Problem {
            position: at.map(|offset| Origin::default().position(text, offset)),
            message,
        };
        match removed {
            Some(_) => found.push(problem),
            None => break Some(problem),
        }
    };
    found.sort_by_key(|problem| problem.position);
    found.extend(last);
    found
}

/// `problems` as one message: their count, then one per line.
pub(crate) fn listed(problems: &[Problem]) -> String {
    let lines: String = problems.iter().map(|p| format!("\n  {p}")).collect();
    format!("{} problems:{lines}", problems.len())
}

/// Removes the unknown key `name` that an error at `span` reports from
/// `table` or any table inside it: the key at `span`, or, where serde
/// buffered a table (an enum's) and the error points at the whole table,
/// the key `name` in the table at `span`. The removed key's span.
fn remove_key(table: &mut DeTable<'_>, span: &Range<usize>, name: &str) -> Option<Range<usize>> {
    let at_span = |key: &Spanned<DeString<'_>>| key.span() == *span;
    if let Some(key) = table
        .keys()
        .find(|key| at_span(key))
        .map(|k| k.get_ref().to_string())
    {
        table.remove(key.as_str());
        return Some(span.clone());
    }
    table.iter_mut().find_map(|(_, value)| {
        let whole_table = value.span() == *span;
        match value.get_mut() {
            DeValue::Table(inner) if whole_table => Some(inner.remove_entry(name)?.0.span()),
            DeValue::Table(inner) => remove_key(inner, span, name),
            DeValue::Array(items) => (items.iter_mut()).find_map(|item| match item.get_mut() {
                DeValue::Table(inner) => remove_key(inner, span, name),
                _ => None,
            }),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        a: i64,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        b: f64,
        #[serde(default)]
        c: f64,
    }

    /// The position of the first occurrence of `needle`, counted by hand
    /// over the lines.
    fn find(text: &str, needle: &str) -> Position {
        (text.lines().enumerate())
            .find_map(|(i, line)| {
                let column = line.find(needle)? + 1;
                Some(Position {
                    line: i + 1,
                    column,
                })
            })
            .unwrap()
    }

    #[test]
    fn every_unknown_key_is_found_in_file_order_then_the_next_problem() {
        let text = "[inner]\nb = 1.0\n  yy = 3\nc = 2.0\n";
        let text = format!("zz = [1,\n 2]\n{text}w = {{ q = 1 }}\n");
        let problems = unknown_keys::<Outer>(&text);
        let positions: Vec<_> = problems.iter().map(|p| p.position).collect();
        assert_eq!(
            positions[..3],
            [
                Some(find(&text, "zz")),
                Some(find(&text, "yy")),
                Some(find(&text, "w ="))
            ]
        );
        for (problem, key) in problems.iter().zip(["`zz`", "`yy`", "`w`"]) {
            assert!(problem.message.starts_with("unknown field"), "{problem}");
            assert!(problem.message.contains(key), "{problem}");
        }
        // With the unknown keys gone, `a` is missing: the last problem.
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[3].message.contains("missing field `a`"),
            "{problems:?}"
        );
        let shown = problems[1].to_string();
        assert!(
            shown.starts_with("line 5, column 3: unknown field `yy`"),
            "{shown}"
        );
    }

    #[test]
    fn a_readable_file_or_no_toml_has_none() {
        assert!(unknown_keys::<Outer>("a = 1\n[inner]\nb = 2.0\n").is_empty());
        assert!(unknown_keys::<Outer>("a = = 1\n").is_empty());
        // A single problem of another kind is reported alone.
        let problems = unknown_keys::<Outer>("a = \"one\"\n[inner]\nb = 2.0\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].message.starts_with("unknown field"));
    }
}
