//! Positions in the definition file: byte spans from the TOML parser turned
//! into lines and columns, and the [`Origin`] of an expression string so that
//! positions inside it are positions in the file.

use std::ops::Range;

use tessera_constraints::expr::{Origin, Position};
use toml::Spanned;

/// The text of a definition file and its name, for positions in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceFile<'a> {
    pub(crate) name: &'a str,
    pub(crate) text: &'a str,
}

impl SourceFile<'_> {
    /// The 1-based line and column of byte `offset`.
    pub(crate) fn position(&self, offset: usize) -> Position {
        Origin::default().position(self.text, offset.min(self.text.len()))
    }

    /// The position of the start of `span`.
    pub(crate) fn at(&self, span: Range<usize>) -> Position {
        self.position(span.start)
    }

    /// Where the value of the string `s` starts in the file: after its opening
    /// delimiter, and after the newline that TOML drops right after `'''` or
    /// `"""`. Exact when the string has no escapes (literal strings never do);
    /// with escapes, positions after the first escape on a line shift by the
    /// escape's length.
    pub(crate) fn origin_of(&self, s: &Spanned<String>) -> Origin {
        let start = s.span().start;
        let raw = &self.text[start.min(self.text.len())..];
        let multi_line = raw.starts_with("'''") || raw.starts_with("\"\"\"");
        let mut content = start + if multi_line { 3 } else { 1 };
        if multi_line {
            let rest = &self.text[content.min(self.text.len())..];
            if rest.starts_with("\r\n") {
                content += 2;
            } else if rest.starts_with('\n') {
                content += 1;
            }
        }
        let p = self.position(content);
        Origin {
            line: p.line,
            column: p.column,
        }
    }
}
