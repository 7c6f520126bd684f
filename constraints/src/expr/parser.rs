//! The grammar of the residual language and its recursive-descent parser.
//!
//! ```text
//! program   := statement (END statement)*
//! statement := ε | "let" NAME "=" expr | expr
//! expr      := product (("+" | "-") product)*
//! product   := unary (("*" | "/") unary)*
//! unary     := "-" unary | power
//! power     := atom ("^" unary)?            # right-associative; -x^2 = -(x^2)
//! atom      := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"
//! ```

use super::error::{ExprError, Origin};
use super::lexer::{Spanned, Token, tokenize};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

/// An expression node; `offset` is the byte offset of the operator (binary and
/// unary nodes) or of the node's first character (others), which is where errors
/// about the node point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) expr: Expr,
    pub(crate) offset: usize,
}

/// The shapes of expressions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Number(f64),
    Name(String),
    Neg(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(String, Vec<Node>),
}

/// One statement: a named intermediate or one residual row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Statement {
    /// `let name = value`; `offset` is that of the name.
    Let {
        name: String,
        offset: usize,
        value: Node,
    },
    /// A residual row; `start` is the offset of its first character.
    Row { value: Node, start: usize },
}

/// How deep parentheses, calls, signs and powers may nest, and how tall an
/// expression's tree may grow (a sum of 300 terms is 300 tall): the parser
/// and every pass over a tree recurse once per level, and a definition past
/// these bounds would overflow a thread's stack instead of being an error.
const MAX_NESTING: usize = 200;
const MAX_HEIGHT: usize = 1000;

/// Parses `text` (which starts at `origin` in its file) into statements.
pub(crate) fn parse(text: &str, origin: Origin) -> Result<Vec<Statement>, ExprError> {
    let tokens = tokenize(text, origin)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        text,
        origin,
        nesting: 0,
    };
    let mut statements = Vec::new();
    loop {
        while parser.eat(&Token::End) {
            if parser.next == parser.tokens.len() {
                return Ok(statements);
            }
        }
        let start = parser.peek().offset;
        let statement = parser.statement()?;
        let value = match &statement {
            Statement::Let { value, .. } | Statement::Row { value, .. } => value,
        };
        if height(value) > MAX_HEIGHT {
            return Err(ExprError::Syntax {
                at: origin.position(text, start),
                message: format!(
                    "this expression is more than {MAX_HEIGHT} operations deep; \
                     split it with `let`"
                ),
            });
        }
        statements.push(statement);
        if !parser.eat(&Token::End) {
            return Err(parser.error("expected the end of the statement (a newline or `;`)"));
        }
        if parser.next == parser.tokens.len() {
            return Ok(statements);
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Spanned>,
    next: usize,
    text: &'a str,
    origin: Origin,
    /// Expressions and signs or powers being parsed, one inside the other.
    nesting: usize,
}

/// The number of nodes on the longest path from `node` to a leaf, counted
/// without recursion (the tree may be taller than a stack allows).
fn height(node: &Node) -> usize {
    let mut tallest = 0;
    let mut open = vec![(node, 1)];
    while let Some((node, depth)) = open.pop() {
        tallest = tallest.max(depth);
        match &node.expr {
            Expr::Number(_) | Expr::Name(_) => {}
            Expr::Neg(inner) => open.push((inner, depth + 1)),
            Expr::Binary(_, left, right) => {
                open.push((left, depth + 1));
                open.push((right, depth + 1));
            }
            Expr::Call(_, args) => open.extend(args.iter().map(|a| (a, depth + 1))),
        }
    }
    tallest
}

impl Parser<'_> {
    fn peek(&self) -> &Spanned {
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn eat(&mut self, token: &Token) -> bool {
        let hit = self.next < self.tokens.len() && &self.tokens[self.next].token == token;
        if hit {
            self.next += 1;
        }
        hit
    }

    fn error(&self, message: &str) -> ExprError {
        let found = match &self.peek().token {
            Token::End if self.peek().offset >= self.text.len() => "the end of the text".into(),
            Token::End => "the end of the line".into(),
            Token::Number(x) => format!("the number {x}"),
            Token::Name(n) => format!("`{n}`"),
            other => format!("`{}`", symbol(other)),
        };
        ExprError::Syntax {
            at: self.origin.position(self.text, self.peek().offset),
            message: format!("{message}, found {found}"),
        }
    }

    fn statement(&mut self) -> Result<Statement, ExprError> {
        let start = self.peek().offset;
        if self.peek().token == Token::Name("let".into()) {
            self.next += 1;
            let Token::Name(name) = self.peek().token.clone() else {
                return Err(self.error("expected a name after `let`"));
            };
            let offset = self.peek().offset;
            self.next += 1;
            if !self.eat(&Token::Equals) {
                return Err(self.error(&format!("expected `=` after `let {name}`")));
            }
            let value = self.expr()?;
            return Ok(Statement::Let {
                name,
                offset,
                value,
            });
        }
        Ok(Statement::Row {
            value: self.expr()?,
            start,
        })
    }

    fn binary_chain(
        &mut self,
        ops: &[(Token, BinaryOp)],
        operand: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = operand(self)?;
        'chain: loop {
            for (token, op) in ops {
                if self.peek().token == *token {
                    let offset = self.peek().offset;
                    self.next += 1;
                    let right = operand(self)?;
                    left = Node {
                        expr: Expr::Binary(*op, Box::new(left), Box::new(right)),
                        offset,
                    };
                    continue 'chain;
                }
            }
            return Ok(left);
        }
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        self.nested(|parser| {
            parser.binary_chain(
                &[(Token::Plus, BinaryOp::Add), (Token::Minus, BinaryOp::Sub)],
                Self::product,
            )
        })
    }

    /// `parse` one level deeper, refused past [`MAX_NESTING`] levels.
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        if self.nesting == MAX_NESTING {
            return Err(self.error(&format!(
                "parentheses, calls, signs and powers nest more than {MAX_NESTING} deep"
            )));
        }
        self.nesting += 1;
        let node = parse(self);
        self.nesting -= 1;
        node
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        self.binary_chain(
            &[(Token::Star, BinaryOp::Mul), (Token::Slash, BinaryOp::Div)],
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.peek().token == Token::Minus {
            let offset = self.peek().offset;
            self.next += 1;
            let inner = self.nested(Self::unary)?;
            return Ok(Node {
                expr: Expr::Neg(Box::new(inner)),
                offset,
            });
        }
        let base = self.atom()?;
        if self.peek().token == Token::Caret {
            let offset = self.peek().offset;
            self.next += 1;
            let exponent = self.nested(Self::unary)?;
            return Ok(Node {
                expr: Expr::Binary(BinaryOp::Pow, Box::new(base), Box::new(exponent)),
                offset,
            });
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let Spanned { token, offset } = self.peek().clone();
        match token {
            Token::Number(x) => {
                self.next += 1;
                Ok(Node {
                    expr: Expr::Number(x),
                    offset,
                })
            }
            Token::Name(name) if name == "let" => {
                Err(self.error("`let` starts a statement and cannot appear inside an expression"))
            }
            Token::Name(name) => {
                self.next += 1;
                if !self.eat(&Token::Open) {
                    return Ok(Node {
                        expr: Expr::Name(name),
                        offset,
                    });
                }
                let mut args = vec![self.expr()?];
                while self.eat(&Token::Comma) {
                    args.push(self.expr()?);
                }
                if !self.eat(&Token::Close) {
                    return Err(self.error(&format!("expected `,` or `)` in the call of `{name}`")));
                }
                Ok(Node {
                    expr: Expr::Call(name, args),
                    offset,
                })
            }
            Token::Open => {
                self.next += 1;
                let inner = self.expr()?;
                if !self.eat(&Token::Close) {
                    return Err(self.error("expected `)`"));
                }
                Ok(inner)
            }
            _ => Err(self.error("expected a number, a name or `(`")),
        }
    }
}

/// How a token is written, for messages.
fn symbol(token: &Token) -> &'static str {
    match token {
        Token::Plus => "+",
        Token::Minus => "-",
        Token::Star => "*",
        Token::Slash => "/",
        Token::Caret => "^",
        Token::Open => "(",
        Token::Close => ")",
        Token::Comma => ",",
        Token::Equals => "=",
        Token::End => ";",
        Token::Number(_) | Token::Name(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::error::Position;

    fn row(text: &str) -> Node {
        match parse(text, Origin::default()).unwrap().remove(0) {
            Statement::Row { value, .. } => value,
            other => panic!("not a row: {other:?}"),
        }
    }

    /// Renders a node fully parenthesised, to read precedence off.
    fn show(node: &Node) -> String {
        match &node.expr {
            Expr::Number(x) => format!("{x}"),
            Expr::Name(n) => n.clone(),
            Expr::Neg(a) => format!("(-{})", show(a)),
            Expr::Binary(op, a, b) => {
                let s = match op {
                    BinaryOp::Add => "+",
                    BinaryOp::Sub => "-",
                    BinaryOp::Mul => "*",
                    BinaryOp::Div => "/",
                    BinaryOp::Pow => "^",
                };
                format!("({}{s}{})", show(a), show(b))
            }
            Expr::Call(f, args) => {
                let args: Vec<String> = args.iter().map(show).collect();
                format!("{f}({})", args.join(","))
            }
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(show(&row("a - b - c")), "((a-b)-c)");
        assert_eq!(show(&row("a + b * c / d")), "(a+((b*c)/d))");
        assert_eq!(show(&row("-x^2")), "(-(x^2))");
        assert_eq!(show(&row("a^b^c")), "(a^(b^c))");
        assert_eq!(show(&row("a^-b")), "(a^(-b))");
        assert_eq!(show(&row("max(a, b + 1) * (c)")), "(max(a,(b+1))*c)");
    }

    #[test]
    fn statements_and_blank_lines() {
        let program = parse(
            "\n let r = 1 + u  # R(u)\n\n u_t - r; u\n",
            Origin::default(),
        )
        .unwrap();
        assert_eq!(program.len(), 3);
        assert!(matches!(&program[0], Statement::Let { name, .. } if name == "r"));
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token() {
        let origin = Origin {
            line: 10,
            column: 12,
        };
        let at = |text: &str| parse(text, origin).unwrap_err().position();
        assert_eq!(
            at("u_t - * u"),
            Position {
                line: 10,
                column: 18
            }
        );
        assert_eq!(
            at("u_t\n  (u + 1"),
            Position {
                line: 11,
                column: 9
            }
        );
        assert_eq!(
            at("let = 3"),
            Position {
                line: 10,
                column: 16
            }
        );
        assert_eq!(
            at("u u"),
            Position {
                line: 10,
                column: 14
            }
        );
    }

    /// Nesting and height past the bounds are syntax errors, not stack
    /// overflows (they once were: 12 000 parentheses, 20 000 terms or signs),
    /// and expressions just within them parse.
    #[test]
    fn expressions_too_deep_for_a_stack_are_errors() {
        let nested = |n: usize| format!("{}u{}", "(".repeat(n), ")".repeat(n));
        let sum = |n: usize| vec!["u"; n].join(" + ");
        let signs = |n: usize| format!("{}u", "-".repeat(n));
        let powers = |n: usize| format!("u{}", "^1".repeat(n));
        for text in [nested(150), sum(900), signs(150), powers(150)] {
            parse(&text, Origin::default()).unwrap();
        }
        let cases = [
            (nested(12_000), "nest more than 200 deep"),
            (signs(20_000), "nest more than 200 deep"),
            (powers(20_000), "nest more than 200 deep"),
            (sum(20_000), "more than 1000 operations deep"),
            (
                format!("let a = {}", sum(1500)),
                "more than 1000 operations deep",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text, Origin::default()).unwrap_err();
            assert!(matches!(err, ExprError::Syntax { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
