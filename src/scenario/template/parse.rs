//! Template syntax: source text split into literal text and `{{ … }}`
//! holes, each parsed into a name path, a function call or a string
//! literal. Names are not looked up here (see `resolve`).

use super::{syntax, TemplateError};

/// A parsed (not yet resolved) expression.
pub(super) enum Ast {
    Str(String),
    Path(Vec<String>),
    Call { name: String, args: Vec<Arg> },
}

pub(super) enum Arg {
    Int(String),
    Str(String),
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// What is at the cursor, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of template".to_string(),
            Some(_) => {
                let snippet: String = self.rest().chars().take(12).collect();
                format!("`{snippet}`")
            }
        }
    }

    fn ident(&mut self) -> Result<String, TemplateError> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return Err(syntax(format!("expected a name, found {}", self.found()))),
        }
        let end = chars
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += end;
        Ok(rest[..end].to_string())
    }

    fn string(&mut self) -> Result<String, TemplateError> {
        let quote = self.peek().expect("caller checked the quote");
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(syntax(format!(
                    "unterminated string literal (missing closing {quote})"
                )));
            };
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(value),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(syntax("unterminated string literal"));
                    };
                    self.pos += e.len_utf8();
                    value.push(match e {
                        '"' | '\'' | '\\' => e,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => {
                            return Err(syntax(format!(
                                "unknown escape `\\{other}` in string literal"
                            )))
                        }
                    });
                }
                c => value.push(c),
            }
        }
    }

    fn int(&mut self) -> String {
        let rest = self.rest();
        let sign = usize::from(rest.starts_with(['-', '+']));
        let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
        self.pos += sign + digits;
        rest[..sign + digits].to_string()
    }

    /// One expression, the cursor just after `{{`; consumes the closing `}}`.
    fn hole(&mut self) -> Result<Ast, TemplateError> {
        self.skip_ws();
        let ast = match self.peek() {
            None => return Err(syntax("unclosed `{{`")),
            Some('"' | '\'') => Ast::Str(self.string()?),
            Some('}') if self.rest().starts_with("}}") => return Err(syntax("empty `{{ }}`")),
            Some(_) => {
                let mut path = vec![self.ident()?];
                while self.eat('.') {
                    path.push(self.ident()?);
                }
                self.skip_ws();
                if self.eat('(') {
                    Ast::Call {
                        name: path.join("."),
                        args: self.args()?,
                    }
                } else {
                    Ast::Path(path)
                }
            }
        };
        self.skip_ws();
        if self.rest().starts_with("}}") {
            self.pos += 2;
            Ok(ast)
        } else if self.peek().is_none() {
            Err(syntax("unclosed `{{` (missing `}}`)"))
        } else {
            Err(syntax(format!("expected `}}}}`, found {}", self.found())))
        }
    }

    /// Arguments after `(`; consumes the closing `)`.
    fn args(&mut self) -> Result<Vec<Arg>, TemplateError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            let arg = match self.peek() {
                Some('"' | '\'') => Arg::Str(self.string()?),
                Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                    let text = self.int();
                    if matches!(text.as_str(), "-" | "+") {
                        return Err(syntax(format!("expected a number after `{text}`")));
                    }
                    Arg::Int(text)
                }
                _ => {
                    return Err(syntax(format!(
                        "expected an argument (a number or a string literal), found {}",
                        self.found()
                    )))
                }
            };
            args.push(arg);
            self.skip_ws();
            if self.eat(')') {
                return Ok(args);
            }
            if !self.eat(',') {
                return Err(syntax(format!(
                    "expected `,` or `)` in arguments, found {}",
                    self.found()
                )));
            }
        }
    }
}

/// A piece of source: literal text or a parsed hole.
pub(super) enum Part {
    Text(String),
    Hole(Ast),
}

/// Split `src` into literal text and parsed holes.
pub(super) fn parse(src: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut p = Parser { src, pos: 0 };
    while let Some(i) = p.rest().find("{{") {
        if i > 0 {
            parts.push(Part::Text(p.rest()[..i].to_string()));
        }
        p.pos += i + 2;
        parts.push(Part::Hole(p.hole()?));
    }
    if !p.rest().is_empty() {
        parts.push(Part::Text(p.rest().to_string()));
    }
    Ok(parts)
}
