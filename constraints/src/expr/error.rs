//! Errors of the residual language, each at a line and column of the file the
//! text came from (see [`Origin`]).

use std::fmt;

/// Where a piece of expression text starts in its file (1-based line and
/// column), so that positions inside it are reported as positions in the file.
///
/// For a TOML multi-line string the text's second line starts at column 1 of the
/// file's next line, so only the first line is shifted by `column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Line of the text's first character in the file (1-based).
    pub line: usize,
    /// Column of the text's first character in the file (1-based, in characters).
    pub column: usize,
}

impl Default for Origin {
    /// The text is the whole file.
    fn default() -> Self {
        Self { line: 1, column: 1 }
    }
}

/// A line and column in the file (1-based; columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Origin {
    /// The file position of byte `offset` of `text` (which starts at `self`).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let before = &text[..offset.min(text.len())];
        let line_in_text = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column_in_line = before[line_start..].chars().count();
        if line_in_text == 0 {
            Position {
                line: self.line,
                column: self.column + column_in_line,
            }
        } else {
            Position {
                line: self.line + line_in_text,
                column: 1 + column_in_line,
            }
        }
    }
}

/// What is wrong with a residual definition, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// The text does not follow the grammar.
    #[error("{at}: syntax error: {message}")]
    Syntax { at: Position, message: String },
    /// A name that is neither a term, a parameter, a coordinate nor an earlier `let`.
    #[error("{at}: unknown name `{name}` ({hint})")]
    UnknownName {
        at: Position,
        name: String,
        hint: String,
    },
    /// A call of a function that does not exist.
    #[error("{at}: unknown function `{name}` (known: {known})")]
    UnknownFunction {
        at: Position,
        name: String,
        known: &'static str,
    },
    /// A function called with the wrong number of arguments.
    #[error("{at}: `{function}` takes {expected} argument(s), got {got}")]
    Arity {
        at: Position,
        function: &'static str,
        expected: usize,
        got: usize,
    },
    /// A `let` that reuses a name already defined.
    #[error("{at}: `{name}` is already defined ({what})")]
    Redefined {
        at: Position,
        name: String,
        what: &'static str,
    },
    /// A division whose divisor is the constant 0.
    #[error("{at}: division by zero (the divisor is the constant 0)")]
    DivisionByZero { at: Position },
    /// A sub-expression of constants only that is NaN or infinite with the given
    /// parameter values (e.g. `log(p)` with `p ≤ 0`).
    #[error("{at}: evaluates to {value} with the given parameter values")]
    NonFiniteConstant { at: Position, value: f64 },
    /// A residual (or row) that does not depend on any term: it would be a
    /// constant row the solver cannot change.
    #[error("{at}: this {what} does not depend on any term")]
    NoTerm { at: Position, what: &'static str },
    /// A definition with no residual at all.
    #[error("{at}: no {what}: write at least one expression that is not a `let`")]
    Empty { at: Position, what: &'static str },
    /// The definition needs more registers or inputs than the tape can index.
    #[error("{at}: the definition is too large ({what})")]
    TooLarge { at: Position, what: &'static str },
}

impl ExprError {
    /// The position in the file the error points at.
    pub fn position(&self) -> Position {
        match self {
            Self::Syntax { at, .. }
            | Self::UnknownName { at, .. }
            | Self::UnknownFunction { at, .. }
            | Self::Arity { at, .. }
            | Self::Redefined { at, .. }
            | Self::DivisionByZero { at }
            | Self::NonFiniteConstant { at, .. }
            | Self::NoTerm { at, .. }
            | Self::Empty { at, .. }
            | Self::TooLarge { at, .. } => *at,
        }
    }
}
