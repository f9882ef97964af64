//! Lexer and recursive-descent parser of the segment language.
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | primary
//! primary    := "(" expr ")" | call | comparison
//! call       := consent(CHANNEL, TOPIC) | has_tag(TEXT) | channel(TEXT)
//!             | bought(NAME = VALUE, ...)     NAME: category, brand, sku, within
//! comparison := FIELD OP value | FIELD ["not"] "in" "(" value ("," value)* ")"
//! OP         := "=" | "!=" | "<" | "<=" | ">" | ">="
//! value      := NUMBER | STRING | DURATION    DURATION: 180d, 4w, 1y
//! ```

use super::{
    closest, Atom, BoughtFilter, CmpOp, Expr, Field, FieldKind, Literal, CONSENT_CHANNELS,
    CONSENT_TOPICS, FUNCTIONS,
};
use crate::analytics::Segment;

/// A parse error with its position (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// What is wrong and what is accepted.
    pub message: String,
    /// The name probably meant.
    pub suggestion: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Days(i64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset.
    at: usize,
}

fn position(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Errors<'a> {
    src: &'a str,
}

impl Errors<'_> {
    fn at(&self, at: usize, message: impl Into<String>, suggestion: Option<&str>) -> ParseError {
        let (line, col) = position(self.src, at);
        ParseError {
            line,
            col,
            message: message.into(),
            suggestion: suggestion.map(str::to_string),
        }
    }
}

fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let err = Errors { src };
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = src[i..].chars().next().expect("in bounds");
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += if bytes.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                Tok::Op(CmpOp::Eq)
            }
            '!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            '<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(CmpOp::Lt)
                }
            },
            '>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CmpOp::Gt)
                }
            }
            '"' | '\'' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(ch) = src[i..].chars().next() else {
                        return Err(err.at(
                            start,
                            format!("this string has no closing {quote}"),
                            None,
                        ));
                    };
                    i += ch.len_utf8();
                    if ch == quote {
                        break;
                    }
                    if ch == '\\' {
                        match src[i..].chars().next() {
                            Some(e @ ('"' | '\'' | '\\')) => {
                                s.push(e);
                                i += 1;
                            }
                            _ => {
                                return Err(err.at(
                                    i - 1,
                                    "unknown escape: use \\\" \\' or \\\\",
                                    None,
                                ))
                            }
                        }
                    } else {
                        s.push(ch);
                    }
                }
                Tok::Str(s)
            }
            '0'..='9' | '.' | '-' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let text = &src[i..j];
                let unit_end = {
                    let mut k = j;
                    while k < bytes.len() && bytes[k].is_ascii_alphabetic() {
                        k += 1;
                    }
                    k
                };
                let unit = &src[j..unit_end];
                let n: f64 = text.parse().map_err(|_| {
                    err.at(start, format!("{text:?} is not a number"), None)
                })?;
                i = unit_end;
                if unit.is_empty() {
                    Tok::Num(n)
                } else {
                    let per = match unit {
                        "d" => 1,
                        "w" => 7,
                        "y" => 365,
                        _ => {
                            return Err(err.at(
                                j,
                                format!(
                                    "unknown duration unit {unit:?}: use d (days), w (weeks) or y (365 days), e.g. 180d"
                                ),
                                closest(unit, ["d", "w", "y"]),
                            ))
                        }
                    };
                    if n.fract() != 0.0 || n < 0.0 {
                        return Err(err.at(
                            start,
                            "a duration is a whole number of units, e.g. 180d",
                            None,
                        ));
                    }
                    Tok::Days(n as i64 * per)
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while let Some(ch) = src[j..].chars().next() {
                    if ch.is_alphanumeric() || ch == '_' {
                        j += ch.len_utf8();
                    } else {
                        break;
                    }
                }
                let word = src[i..j].to_string();
                i = j;
                Tok::Ident(word)
            }
            other => {
                return Err(err.at(
                    start,
                    format!("unexpected {other:?}: expected a field, a function, a value, an operator (= != < <= > >=), a parenthesis or a comma"),
                    None,
                ))
            }
        };
        out.push(Token { tok, at: start });
    }
    out.push(Token {
        tok: Tok::End,
        at: src.len(),
    });
    Ok(out)
}

/// Parse an expression of the segment language.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        err: Errors { src },
    };
    if matches!(p.peek().tok, Tok::End) {
        return Err(p.err.at(
            0,
            "the expression is empty: expected a condition such as orders >= 2",
            None,
        ));
    }
    let e = p.or()?;
    let t = p.peek().clone();
    if !matches!(t.tok, Tok::End) {
        return Err(p.err.at(
            t.at,
            format!(
                "unexpected {}: expected and, or, or the end",
                describe(&t.tok)
            ),
            None,
        ));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(w) => format!("{w:?}"),
        Tok::Str(s) => format!("the string {s:?}"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::Days(d) => format!("the duration {d}d"),
        Tok::Op(_) => "an operator".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::End => "the end".into(),
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    err: Errors<'a>,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }
    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Token, ParseError> {
        let t = self.next();
        if t.tok == want {
            Ok(t)
        } else {
            Err(self.err.at(
                t.at,
                format!("expected {what}, found {}", describe(&t.tok)),
                None,
            ))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while is_kw(&self.peek().tok, "or") {
            self.next();
            let right = self.and()?;
            left = Expr::Or {
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while is_kw(&self.peek().tok, "and") {
            self.next();
            let right = self.unary()?;
            left = Expr::And {
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if is_kw(&self.peek().tok, "not") {
            self.next();
            let e = self.unary()?;
            return Ok(Expr::Not { expr: Box::new(e) });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let t = self.next();
        match t.tok {
            Tok::LParen => {
                let e = self.or()?;
                self.expect(Tok::RParen, "\")\" closing the \"(\"")?;
                Ok(e)
            }
            Tok::Ident(word) => {
                let lower = word.to_lowercase();
                let is_call = matches!(self.peek().tok, Tok::LParen);
                if is_call {
                    if FUNCTIONS.contains(&lower.as_str()) {
                        return self.call(&lower, t.at);
                    }
                    let hint = closest(&lower, FUNCTIONS);
                    let msg = if Field::from_name(&lower).is_some() {
                        format!("{word} is a field, not a function: compare it, e.g. {lower} >= 1")
                    } else {
                        format!(
                            "unknown function {word:?}: the functions are {}",
                            FUNCTIONS.join(", ")
                        )
                    };
                    return Err(self.err.at(t.at, msg, hint));
                }
                let Some(field) = Field::from_name(&lower) else {
                    if FUNCTIONS.contains(&lower.as_str()) {
                        return Err(self.err.at(
                            t.at,
                            format!("{word} is a function: call it, e.g. {lower}(...)"),
                            None,
                        ));
                    }
                    let hint =
                        closest(&lower, Field::ALL.iter().map(|f| f.name()).chain(FUNCTIONS));
                    return Err(self.err.at(
                        t.at,
                        format!(
                            "unknown field {word:?}: see the list of fields in docs/campaigns.md"
                        ),
                        hint,
                    ));
                };
                self.comparison(field)
            }
            other => Err(self.err.at(
                t.at,
                format!(
                    "expected a condition (a field, a function, \"not\" or \"(\"), found {}",
                    describe(&other)
                ),
                None,
            )),
        }
    }

    fn comparison(&mut self, field: Field) -> Result<Expr, ParseError> {
        let t = self.next();
        let negated = is_kw(&t.tok, "not");
        let t = if negated { self.next() } else { t };
        if is_kw(&t.tok, "in") {
            self.expect(Tok::LParen, "\"(\" after in")?;
            let mut values = vec![self.value(field)?];
            loop {
                let t = self.next();
                match t.tok {
                    Tok::Comma => values.push(self.value(field)?),
                    Tok::RParen => break,
                    other => {
                        return Err(self.err.at(
                            t.at,
                            format!(
                                "expected \",\" or \")\" in the list, found {}",
                                describe(&other)
                            ),
                            None,
                        ))
                    }
                }
            }
            return Ok(Expr::In {
                field,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.err.at(t.at, "expected in after not", None));
        }
        let Tok::Op(cmp) = t.tok else {
            return Err(self.err.at(
                t.at,
                format!(
                    "expected an operator after {} (= != < <= > >= or in), found {}",
                    field.name(),
                    describe(&t.tok)
                ),
                None,
            ));
        };
        if field.kind() == FieldKind::Text && !matches!(cmp, CmpOp::Eq | CmpOp::Ne) {
            return Err(self.err.at(
                t.at,
                format!(
                    "{} is a text: compare it with =, != or in (...)",
                    field.name()
                ),
                None,
            ));
        }
        let value = self.value(field)?;
        Ok(Expr::Cmp { field, cmp, value })
    }

    fn value(&mut self, field: Field) -> Result<Literal, ParseError> {
        let t = self.next();
        match (field.kind(), t.tok) {
            (FieldKind::Number, Tok::Num(n)) => Ok(Literal::Number(n)),
            (FieldKind::Number, Tok::Days(d)) if field.takes_duration() => {
                Ok(Literal::Number(d as f64))
            }
            (FieldKind::Number, Tok::Days(_)) => Err(self.err.at(
                t.at,
                format!("{} takes a number, not a duration", field.name()),
                None,
            )),
            (FieldKind::Text, Tok::Str(s)) => self.text_value(field, s, t.at),
            (FieldKind::Text, other) => Err(self.err.at(
                t.at,
                format!(
                    "{} takes a quoted text, e.g. {}, found {}",
                    field.name(),
                    example(field),
                    describe(&other)
                ),
                None,
            )),
            (FieldKind::Number, other) => Err(self.err.at(
                t.at,
                format!(
                    "{} takes a number{}, found {}",
                    field.name(),
                    if field.takes_duration() {
                        " of days or a duration (90d)"
                    } else {
                        ""
                    },
                    describe(&other)
                ),
                None,
            )),
        }
    }

    fn text_value(&self, field: Field, s: String, at: usize) -> Result<Literal, ParseError> {
        let check = |names: &[&str]| -> Result<Literal, ParseError> {
            if names.iter().any(|n| n.eq_ignore_ascii_case(&s)) {
                Ok(Literal::Text(s.clone()))
            } else {
                Err(self.err.at(
                    at,
                    format!(
                        "{} has no value {s:?}: one of {}",
                        field.name(),
                        names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    closest(&s, names.iter().copied()),
                ))
            }
        };
        match field {
            Field::RfmSegment => {
                let names: Vec<&str> = Segment::all().map(Segment::name).collect();
                check(&names)
            }
            Field::AbcClass => check(&["A", "B", "C", "loss-making"]),
            _ => Ok(Literal::Text(s)),
        }
    }

    /// A text argument: a quoted string, or a bare word.
    fn text_arg(&mut self, what: &str) -> Result<(String, usize), ParseError> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) | Tok::Ident(s) => Ok((s, t.at)),
            other => Err(self.err.at(
                t.at,
                format!("expected {what}, found {}", describe(&other)),
                None,
            )),
        }
    }

    fn one_of(
        &self,
        value: &str,
        at: usize,
        what: &str,
        names: &[&str],
    ) -> Result<String, ParseError> {
        let v = value.to_lowercase();
        if names.contains(&v.as_str()) {
            return Ok(v);
        }
        Err(self.err.at(
            at,
            format!("unknown {what} {value:?}: one of {}", names.join(", ")),
            closest(&v, names.iter().copied()),
        ))
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Expr, ParseError> {
        self.expect(Tok::LParen, "\"(\"")?;
        let atom = match name {
            "consent" => {
                let (ch, ch_at) = self.text_arg("a channel (email, sms, wechat, webhook)")?;
                let channel = self.one_of(&ch, ch_at, "consent channel", &CONSENT_CHANNELS)?;
                self.expect(Tok::Comma, "\",\" and a topic (newsletter, promotions)")?;
                let (tp, tp_at) = self.text_arg("a topic (newsletter, promotions)")?;
                let topic = self.one_of(&tp, tp_at, "consent topic", &CONSENT_TOPICS)?;
                Atom::Consent { channel, topic }
            }
            "has_tag" => {
                let (tag, tag_at) = self.text_arg("a tag, e.g. has_tag(\"vip\")")?;
                if tag.trim().is_empty() {
                    return Err(self.err.at(tag_at, "a tag is not empty", None));
                }
                Atom::HasTag {
                    tag: tag.trim().to_lowercase(),
                }
            }
            "channel" => {
                let (ch, ch_at) = self.text_arg("a sales channel, e.g. channel(\"tmall\")")?;
                if ch.trim().is_empty() {
                    return Err(self.err.at(ch_at, "a channel is not empty", None));
                }
                Atom::Channel {
                    channel: ch.trim().to_string(),
                }
            }
            _ => {
                let mut f = BoughtFilter {
                    category: None,
                    brand: None,
                    sku: None,
                    within_days: None,
                };
                loop {
                    let t = self.next();
                    let Tok::Ident(arg) = &t.tok else {
                        return Err(self.err.at(
                            t.at,
                            format!("expected a filter of bought (category, brand, sku, within), found {}", describe(&t.tok)),
                            None,
                        ));
                    };
                    let arg = arg.to_lowercase();
                    self.expect(Tok::Op(CmpOp::Eq), &format!("\"=\" after {arg}"))?;
                    match arg.as_str() {
                        "category" | "brand" | "sku" => {
                            let v = self.next();
                            let Tok::Str(s) = v.tok else {
                                return Err(self.err.at(
                                    v.at,
                                    format!("{arg} takes a quoted text, e.g. {arg} = \"skincare\""),
                                    None,
                                ));
                            };
                            let slot = match arg.as_str() {
                                "category" => &mut f.category,
                                "brand" => &mut f.brand,
                                _ => &mut f.sku,
                            };
                            *slot = Some(s);
                        }
                        "within" => {
                            let v = self.next();
                            f.within_days = Some(match v.tok {
                                Tok::Days(d) => d,
                                Tok::Num(n) if n.fract() == 0.0 && n >= 0.0 => n as i64,
                                _ => {
                                    return Err(self.err.at(
                                        v.at,
                                        "within takes a duration, e.g. within = 180d",
                                        None,
                                    ))
                                }
                            });
                        }
                        _ => {
                            return Err(self.err.at(
                                t.at,
                                format!(
                                "bought has no filter {arg:?}: one of category, brand, sku, within"
                            ),
                                closest(&arg, ["category", "brand", "sku", "within"]),
                            ))
                        }
                    }
                    if matches!(self.peek().tok, Tok::Comma) {
                        self.next();
                        continue;
                    }
                    break;
                }
                if f.category.is_none() && f.brand.is_none() && f.sku.is_none() {
                    return Err(self.err.at(
                        at,
                        "bought needs a product: category, brand or sku, e.g. bought(category = \"skincare\")",
                        None,
                    ));
                }
                Atom::Bought(f)
            }
        };
        self.expect(Tok::RParen, &format!("\")\" closing {name}("))?;
        Ok(Expr::Atom { atom })
    }
}

fn example(field: Field) -> &'static str {
    match field {
        Field::RfmSegment => "\"At Risk\"",
        Field::AbcClass => "\"A\"",
        Field::Tier => "\"Gold\"",
        Field::Gender => "\"female\"",
        Field::Region => "\"浙江省\"",
        Field::City => "\"杭州\"",
        Field::Language => "\"zh\"",
        _ => "\"...\"",
    }
}
