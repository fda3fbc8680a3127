//! Enough of GraphQL's query language for the fake to answer any query over the part of
//! GitLab's schema it serves (operations, variables, aliases, arguments, nested
//! selections; no fragments or directives, which it refuses as errors).

use serde_json::{Map, Value as Json};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Var(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value with variables filled in.
    pub fn resolve(&self, vars: &Map<String, Json>) -> Json {
        match self {
            Value::Var(v) => vars.get(v).cloned().unwrap_or(Json::Null),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => Json::from(*f),
            Value::Str(s) | Value::Enum(s) => Json::String(s.clone()),
            Value::Bool(b) => Json::Bool(*b),
            Value::Null => Json::Null,
            Value::List(items) => Json::Array(items.iter().map(|v| v.resolve(vars)).collect()),
            Value::Object(kv) => Json::Object(
                kv.iter()
                    .map(|(k, v)| (k.clone(), v.resolve(vars)))
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, Value)>,
    pub selection: Vec<Field>,
}

impl Field {
    /// The key this field has in the answer.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
    pub fn arg(&self, name: &str, vars: &Map<String, Json>) -> Json {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.resolve(vars))
            .unwrap_or(Json::Null)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarDef {
    pub name: String,
    pub non_null: bool,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub mutation: bool,
    pub name: Option<String>,
    pub vars: Vec<VarDef>,
    pub selection: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '!' | '$' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                out.push(Tok::Punct(c));
                i += 1;
            }
            '.' => {
                if chars.get(i..i + 3) == Some(&['.', '.', '.']) {
                    out.push(Tok::Spread);
                    i += 3;
                } else {
                    return Err("Parse error on \".\"".into());
                }
            }
            '"' => {
                if chars.get(i..i + 3) == Some(&['"', '"', '"']) {
                    return Err("block strings are not supported by this fake".into());
                }
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("Unterminated string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().ok_or("Unterminated string")?;
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                'u' => {
                                    let hex: String =
                                        chars.get(i..i + 4).ok_or("bad escape")?.iter().collect();
                                    let code =
                                        u32::from_str_radix(&hex, 16).map_err(|_| "bad escape")?;
                                    s.push(char::from_u32(code).ok_or("bad escape")?);
                                    i += 4;
                                }
                                other => s.push(other),
                            }
                        }
                        '\n' => return Err("Unterminated string".into()),
                        other => s.push(other),
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], '.' | 'e' | 'E' | '+' | '-'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if let Ok(n) = text.parse::<i64>() {
                    out.push(Tok::Int(n));
                } else {
                    out.push(Tok::Float(
                        text.parse().map_err(|_| format!("bad number {text}"))?,
                    ));
                }
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push(Tok::Name(chars[start..i].iter().collect()));
            }
            other => return Err(format!("Parse error on \"{other}\"")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "Parse error: expected \"{c}\", got {:?}",
                self.peek()
            ))
        }
    }
    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            other => Err(format!("Parse error: expected a name, got {other:?}")),
        }
    }

    fn operation(&mut self) -> Result<Operation, String> {
        let mut op = Operation {
            mutation: false,
            name: None,
            vars: Vec::new(),
            selection: Vec::new(),
        };
        if let Some(Tok::Name(kw)) = self.peek().cloned() {
            match kw.as_str() {
                "query" => {}
                "mutation" => op.mutation = true,
                "subscription" => return Err("subscriptions are not supported".into()),
                "fragment" => return Err("fragments are not supported by this fake".into()),
                _ => return Err(format!("Parse error on \"{kw}\"")),
            }
            self.at += 1;
            if let Some(Tok::Name(_)) = self.peek() {
                op.name = Some(self.name()?);
            }
            if self.eat('(') {
                while !self.eat(')') {
                    self.expect('$')?;
                    let name = self.name()?;
                    self.expect(':')?;
                    let non_null = self.type_ref()?;
                    let default = if self.eat('=') {
                        Some(self.value()?)
                    } else {
                        None
                    };
                    op.vars.push(VarDef {
                        name,
                        non_null,
                        default,
                    });
                }
            }
            if self.peek() == Some(&Tok::Punct('@')) {
                return Err("directives are not supported by this fake".into());
            }
        }
        op.selection = self.selection_set()?;
        Ok(op)
    }

    /// A type reference; whether it is non-null.
    fn type_ref(&mut self) -> Result<bool, String> {
        if self.eat('[') {
            self.type_ref()?;
            self.expect(']')?;
        } else {
            self.name()?;
        }
        Ok(self.eat('!'))
    }

    fn selection_set(&mut self) -> Result<Vec<Field>, String> {
        self.expect('{')?;
        let mut fields = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Tok::Spread) {
                return Err("fragments are not supported by this fake".into());
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let mut args = Vec::new();
            if self.eat('(') {
                while !self.eat(')') {
                    let k = self.name()?;
                    self.expect(':')?;
                    args.push((k, self.value()?));
                }
            }
            if self.peek() == Some(&Tok::Punct('@')) {
                return Err("directives are not supported by this fake".into());
            }
            let selection = if self.peek() == Some(&Tok::Punct('{')) {
                self.selection_set()?
            } else {
                Vec::new()
            };
            fields.push(Field {
                alias,
                name,
                args,
                selection,
            });
        }
        Ok(fields)
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Punct('$')) => Ok(Value::Var(self.name()?)),
            Some(Tok::Int(i)) => Ok(Value::Int(i)),
            Some(Tok::Float(f)) => Ok(Value::Float(f)),
            Some(Tok::Str(s)) => Ok(Value::Str(s)),
            Some(Tok::Name(n)) => Ok(match n.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::Enum(n),
            }),
            Some(Tok::Punct('[')) => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                }
                Ok(Value::List(items))
            }
            Some(Tok::Punct('{')) => {
                let mut kv = Vec::new();
                while !self.eat('}') {
                    let k = self.name()?;
                    self.expect(':')?;
                    kv.push((k, self.value()?));
                }
                Ok(Value::Object(kv))
            }
            other => Err(format!("Parse error: expected a value, got {other:?}")),
        }
    }
}

/// Parses a document and picks the operation to run (by `operation_name` when several).
pub fn parse(src: &str, operation_name: Option<&str>) -> Result<Operation, String> {
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
    };
    let mut ops = Vec::new();
    while p.peek().is_some() {
        ops.push(p.operation()?);
    }
    match (ops.len(), operation_name) {
        (0, _) => Err("No query string was present".into()),
        (1, None) => Ok(ops.remove(0)),
        (_, Some(name)) => ops
            .into_iter()
            .find(|o| o.name.as_deref() == Some(name))
            .ok_or_else(|| format!("No operation named \"{name}\"")),
        (_, None) => Err("An operation name is required".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variables_aliases_arguments_and_nesting() {
        let op = parse(
            r#"query q($fullPath: ID!, $after: String = null) {
                 p: project(fullPath: $fullPath) { terraformStates(first: 5, after: $after) {
                   pageInfo { hasNextPage endCursor } nodes { name lockedByUser { username } } } }
                 # a comment
               }"#,
            None,
        )
        .unwrap();
        assert_eq!(op.vars.len(), 2);
        assert!(op.vars[0].non_null && !op.vars[1].non_null);
        let project = &op.selection[0];
        assert_eq!((project.key(), project.name.as_str()), ("p", "project"));
        let states = &project.selection[0];
        assert_eq!(states.args[0], ("first".to_string(), Value::Int(5)));
        assert_eq!(
            states.selection[1].selection[1].selection[0].name,
            "username"
        );
        let vars: Map<String, Json> = serde_json::from_str(r#"{"fullPath":"g/p"}"#).unwrap();
        assert_eq!(project.arg("fullPath", &vars), Json::String("g/p".into()));
        assert!(parse("{ a { ...F } }", None).is_err());
        assert!(parse("query { a(b: \"x) }", None).is_err());
        assert!(parse("mutation m { a }", None).unwrap().mutation);
    }
}
