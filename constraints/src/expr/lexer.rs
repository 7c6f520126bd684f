//! Tokens of the residual language, each with its byte offset in the text.
//!
//! Operators may be written in ASCII or as the mathematical symbols
//! (`−` for `-`, `×` or `·` for `*`, `÷` for `/`). `#` starts a comment to the end
//! of the line. Newlines and `;` end statements.

use super::error::{ExprError, Origin};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A number literal.
    Number(f64),
    /// A name (letters, digits, `_`; not starting with a digit).
    Name(String),
    /// `+`
    Plus,
    /// `-` or `−`
    Minus,
    /// `*`, `×` or `·`
    Star,
    /// `/` or `÷`
    Slash,
    /// `^`
    Caret,
    /// `(`
    Open,
    /// `)`
    Close,
    /// `,`
    Comma,
    /// `=`
    Equals,
    /// A newline or `;`.
    End,
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub(crate) token: Token,
    pub(crate) offset: usize,
}

/// Splits `text` into tokens (the last one is always [`Token::End`]).
pub(crate) fn tokenize(text: &str, origin: Origin) -> Result<Vec<Spanned>, ExprError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        let single = match c {
            '+' => Some(Token::Plus),
            '-' | '−' => Some(Token::Minus),
            '*' | '×' | '·' => Some(Token::Star),
            '/' | '÷' => Some(Token::Slash),
            '^' => Some(Token::Caret),
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            ',' => Some(Token::Comma),
            '=' => Some(Token::Equals),
            '\n' | ';' => Some(Token::End),
            _ => None,
        };
        if let Some(token) = single {
            chars.next();
            out.push(Spanned { token, offset });
        } else if c == '#' {
            while chars.next_if(|&(_, c)| c != '\n').is_some() {}
        } else if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_digit() || c == '.' {
            let end = number_end(text, offset);
            let literal = &text[offset..end];
            let value = literal.parse::<f64>().map_err(|_| ExprError::Syntax {
                at: origin.position(text, offset),
                message: format!("`{literal}` is not a number"),
            })?;
            while chars.next_if(|&(i, _)| i < end).is_some() {}
            out.push(Spanned {
                token: Token::Number(value),
                offset,
            });
        } else if c.is_alphabetic() || c == '_' {
            let mut end = offset;
            while let Some((i, c)) = chars.next_if(|&(_, c)| c.is_alphanumeric() || c == '_') {
                end = i + c.len_utf8();
            }
            out.push(Spanned {
                token: Token::Name(text[offset..end].to_owned()),
                offset,
            });
        } else {
            return Err(ExprError::Syntax {
                at: origin.position(text, offset),
                message: format!("unexpected character `{c}`"),
            });
        }
    }
    out.push(Spanned {
        token: Token::End,
        offset: text.len(),
    });
    Ok(out)
}

/// The end of the number literal starting at `start`: digits, one `.`, and an
/// exponent `e[+-]digits`.
fn number_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(&mut i);
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        digits(&mut i);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            i = j;
            digits(&mut i);
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_symbols() {
        let tokens: Vec<Token> = tokenize("a1 − 2.5e-3×x_2 # note\n÷(1.)", Origin::default())
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect();
        assert_eq!(
            tokens,
            vec![
                Token::Name("a1".into()),
                Token::Minus,
                Token::Number(2.5e-3),
                Token::Star,
                Token::Name("x_2".into()),
                Token::End,
                Token::Slash,
                Token::Open,
                Token::Number(1.0),
                Token::Close,
                Token::End,
            ]
        );
    }

    #[test]
    fn bad_character_points_at_it() {
        let origin = Origin { line: 4, column: 9 };
        let err = tokenize("u +\n  u $ 2", origin).unwrap_err();
        assert_eq!(
            err.position(),
            super::super::error::Position { line: 5, column: 5 }
        );
    }
}
