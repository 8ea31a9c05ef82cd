//! ASL intrinsic functions (`States.Format`, `States.JsonMerge`, …).
//!
//! An intrinsic call is parsed in full before anything is evaluated, so an unknown function, a
//! wrong argument count or a malformed literal fails before any path is resolved. Every failure
//! of the call itself is `States.IntrinsicFailure`; errors from `resolve` (a path that matches
//! nothing) are passed through unchanged.
//!
//! Step Functions runs on the JVM and several results show it: numbers are rounded with
//! `Math.round` (half up), a float renders like `Double.toString` (`1.0`, `1.0E20`), values
//! interpolated by `States.Format` render like `Map.toString` (`{a=1, b=[]}`), and
//! `States.StringSplit` drops empty tokens like `StringTokenizer`.

use crate::AslError;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// AWS allows ten intrinsic calls nested within one field.
const MAX_NESTING: usize = 10;
/// The documented input limit of Base64Encode, Base64Decode and Hash.
const MAX_TEXT_CHARS: usize = 10_000;
/// The documented size limit of the array that ArrayRange builds.
const MAX_RANGE_ITEMS: i128 = 1000;

/// Evaluates an intrinsic function call such as `States.Format('{} x', $.a)`. `resolve`
/// evaluates a JSONPath argument (`$...` against the state's input, `$$...` against the
/// context object).
pub fn evaluate(
    expr: &str,
    resolve: &dyn Fn(&str) -> Result<Value, AslError>,
) -> Result<Value, AslError> {
    let call = Parser::new(expr).parse()?;
    call.eval(resolve)
}

// ---------------------------------------------------------------- functions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "States.Format" => Func::Format,
            "States.StringToJson" => Func::StringToJson,
            "States.JsonToString" => Func::JsonToString,
            "States.Array" => Func::Array,
            "States.ArrayPartition" => Func::ArrayPartition,
            "States.ArrayContains" => Func::ArrayContains,
            "States.ArrayRange" => Func::ArrayRange,
            "States.ArrayGetItem" => Func::ArrayGetItem,
            "States.ArrayLength" => Func::ArrayLength,
            "States.ArrayUnique" => Func::ArrayUnique,
            "States.Base64Encode" => Func::Base64Encode,
            "States.Base64Decode" => Func::Base64Decode,
            "States.Hash" => Func::Hash,
            "States.JsonMerge" => Func::JsonMerge,
            "States.MathRandom" => Func::MathRandom,
            "States.MathAdd" => Func::MathAdd,
            "States.StringSplit" => Func::StringSplit,
            "States.UUID" => Func::Uuid,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    /// Smallest and largest argument count (`None`: no upper bound).
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Format => (1, None),
            Func::Array => (0, None),
            Func::Uuid => (0, Some(0)),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, Some(1)),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, Some(2)),
            Func::ArrayRange | Func::JsonMerge => (3, Some(3)),
            Func::MathRandom => (2, Some(3)),
        }
    }

    fn fail(self, msg: impl std::fmt::Display) -> AslError {
        AslError::intrinsic(format!("{}: {msg}", self.name()))
    }
}

// ---------------------------------------------------------------- syntax

struct Call<'a> {
    func: Func,
    args: Vec<Arg<'a>>,
}

enum Arg<'a> {
    Value(Value),
    /// A quoted literal; `escaped_braces` holds the byte offsets of braces written as `\{` or
    /// `\}`, which States.Format must not take for a `{}` placeholder.
    Text {
        text: String,
        escaped_braces: Vec<usize>,
    },
    Path(&'a str),
    Call(Call<'a>),
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { src, pos: 0 }
    }

    fn parse(mut self) -> Result<Call<'a>, AslError> {
        self.skip_ws();
        let call = self.call(1)?;
        self.skip_ws();
        if self.pos < self.src.len() {
            return Err(self.error("unexpected text after the closing ')'"));
        }
        Ok(call)
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error(&self, msg: &str) -> AslError {
        let at = self
            .src
            .get(..self.pos)
            .map_or(self.pos, |s| s.chars().count());
        AslError::intrinsic(format!(
            "invalid intrinsic function call '{}': {msg} (at character {at})",
            self.src
        ))
    }

    fn call(&mut self, depth: usize) -> Result<Call<'a>, AslError> {
        if depth > MAX_NESTING {
            return Err(self.error(&format!(
                "more than {MAX_NESTING} nested intrinsic functions"
            )));
        }
        let start = self.pos;
        if !self.rest().starts_with("States.") {
            return Err(self.error("expected an intrinsic function such as States.Format"));
        }
        self.pos += "States.".len();
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        let name = &self.src[start..self.pos];
        let Some(func) = Func::from_name(name) else {
            self.pos = start;
            return Err(self.error(&format!("unknown intrinsic function '{name}'")));
        };
        self.skip_ws();
        if self.peek() != Some(b'(') {
            return Err(self.error(&format!("expected '(' after {name}")));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                args.push(self.arg(depth)?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => return Err(self.error("expected ',' or ')' after an argument")),
                    None => return Err(self.error(&format!("missing ')' to close {name}"))),
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            let expected = match max {
                Some(max) if max == min => format!("{min}"),
                Some(max) => format!("{min} to {max}"),
                None => format!("at least {min}"),
            };
            let plural = if expected.ends_with(" 1") || expected == "1" {
                ""
            } else {
                "s"
            };
            return Err(func.fail(format_args!(
                "expected {expected} argument{plural}, got {}",
                args.len()
            )));
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg<'a>, AslError> {
        match self.peek() {
            Some(b'\'') => self.text(),
            Some(b'$') => self.path(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'S') if self.rest().starts_with("States.") => {
                Ok(Arg::Call(self.call(depth + 1)?))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "true" => Ok(Arg::Value(Value::Bool(true))),
                    "false" => Ok(Arg::Value(Value::Bool(false))),
                    "null" => Ok(Arg::Value(Value::Null)),
                    word => {
                        self.pos = start;
                        Err(self.error(&format!(
                            "unexpected '{word}' where an argument was expected"
                        )))
                    }
                }
            }
            Some(b')' | b',') => Err(self.error("missing argument")),
            Some(_) => Err(self.error("unexpected character where an argument was expected")),
            None => Err(self.error("unexpected end where an argument was expected")),
        }
    }

    fn number(&mut self) -> Result<Arg<'a>, AslError> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        let token = &self.src[start..self.pos];
        // JSON's number grammar, so a literal is typed (integer or float) like the same number
        // in the state input.
        match serde_json::from_str::<Value>(token) {
            Ok(n @ Value::Number(_)) => Ok(Arg::Value(n)),
            _ => {
                self.pos = start;
                Err(self.error(&format!("invalid number '{token}'")))
            }
        }
    }

    fn path(&mut self) -> Result<Arg<'a>, AslError> {
        let start = self.pos;
        let len = self.src.len();
        let mut brackets = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'[' => brackets += 1,
                b']' if brackets == 0 => return Err(self.error("unbalanced ']' in a path")),
                b']' => brackets -= 1,
                b'\'' | b'"' if brackets > 0 => {
                    // A quoted member name may hold ',', ')' or blanks.
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err(self.error("unterminated quoted name in a path")),
                            Some(b'\\') => self.pos = (self.pos + 2).min(len),
                            Some(q) if q == c => break,
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                b',' | b')' | b' ' | b'\t' | b'\n' | b'\r' if brackets == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        if brackets > 0 {
            return Err(self.error("unbalanced '[' in a path"));
        }
        Ok(Arg::Path(&self.src[start..self.pos]))
    }

    fn text(&mut self) -> Result<Arg<'a>, AslError> {
        self.pos += 1;
        let mut text = String::new();
        let mut escaped_braces = Vec::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error("unterminated string literal"));
            };
            self.pos += c.len_utf8();
            match c {
                '\'' => break,
                '\\' => {
                    let Some(e) = self.rest().chars().next() else {
                        return Err(
                            self.error("open escape backslash at the end of a string literal")
                        );
                    };
                    self.pos += e.len_utf8();
                    match e {
                        '\'' | '\\' | '"' | '/' => text.push(e),
                        '{' | '}' => {
                            escaped_braces.push(text.len());
                            text.push(e);
                        }
                        'n' => text.push('\n'),
                        't' => text.push('\t'),
                        'r' => text.push('\r'),
                        'b' => text.push('\u{8}'),
                        'f' => text.push('\u{c}'),
                        'u' => {
                            let c = self.unicode_escape()?;
                            text.push(c);
                        }
                        _ => {
                            return Err(self.error(&format!(
                                "invalid escape sequence '\\{e}' in a string literal"
                            )));
                        }
                    }
                }
                _ => text.push(c),
            }
        }
        Ok(Arg::Text {
            text,
            escaped_braces,
        })
    }

    /// The rest of a `\uXXXX` escape (the `\u` is consumed), joining a UTF-16 surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, AslError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.rest().starts_with("\\u") {
                return Err(self.error("unpaired UTF-16 surrogate in a \\u escape"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("unpaired UTF-16 surrogate in a \\u escape"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, AslError> {
        let digits = self
            .rest()
            .get(..4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(digits) = digits else {
            return Err(self.error("a \\u escape needs four hexadecimal digits"));
        };
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))
    }
}

// ---------------------------------------------------------------- evaluation

impl Arg<'_> {
    fn eval(&self, resolve: &dyn Fn(&str) -> Result<Value, AslError>) -> Result<Value, AslError> {
        match self {
            Arg::Value(v) => Ok(v.clone()),
            Arg::Text { text, .. } => Ok(Value::String(text.clone())),
            Arg::Path(path) => resolve(path),
            Arg::Call(call) => call.eval(resolve),
        }
    }
}

impl Call<'_> {
    fn eval(&self, resolve: &dyn Fn(&str) -> Result<Value, AslError>) -> Result<Value, AslError> {
        let args = self
            .args
            .iter()
            .map(|a| a.eval(resolve))
            .collect::<Result<Vec<_>, _>>()?;
        let f = self.func;
        match f {
            Func::Format => {
                let escaped: &[usize] = match self.args.first() {
                    Some(Arg::Text { escaped_braces, .. }) => escaped_braces,
                    _ => &[],
                };
                format(f, &args, escaped)
            }
            Func::StringToJson => string_to_json(f, &args[0]),
            Func::JsonToString => {
                let mut out = String::new();
                write_json(&mut out, &args[0]);
                Ok(Value::String(out))
            }
            Func::Array => Ok(Value::Array(args)),
            Func::ArrayPartition => {
                let items = array_arg(f, 1, &args[0])?;
                let size = int_arg(f, 2, &args[1])?;
                if size <= 0 {
                    return Err(f.fail(format_args!(
                        "the chunk size must be a positive integer, got {size}"
                    )));
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Value::Array(
                    items
                        .chunks(size)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            Func::ArrayContains => {
                let items = array_arg(f, 1, &args[0])?;
                Ok(Value::Bool(
                    items.iter().any(|item| json_eq(item, &args[1])),
                ))
            }
            Func::ArrayRange => array_range(f, &args),
            Func::ArrayGetItem => {
                let items = array_arg(f, 1, &args[0])?;
                let index = int_arg(f, 2, &args[1])?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        f.fail(format_args!(
                            "index {index} is out of bounds for an array of length {}",
                            items.len()
                        ))
                    })
            }
            Func::ArrayLength => Ok(Value::from(array_arg(f, 1, &args[0])?.len())),
            Func::ArrayUnique => {
                let items = array_arg(f, 1, &args[0])?;
                let mut seen = std::collections::HashSet::new();
                let unique = items
                    .iter()
                    .filter(|item| seen.insert(canonical_key(item)))
                    .cloned()
                    .collect();
                Ok(Value::Array(unique))
            }
            Func::Base64Encode => {
                let text = limited_text_arg(f, 1, &args[0])?;
                Ok(Value::String(base64_encode(text.as_bytes())))
            }
            Func::Base64Decode => {
                let text = limited_text_arg(f, 1, &args[0])?;
                let bytes = base64_decode(text).map_err(|msg| f.fail(msg))?;
                // Like Java's `new String(bytes, UTF_8)`: invalid sequences become U+FFFD.
                Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Func::Hash => hash(f, &args),
            Func::JsonMerge => {
                let first = object_arg(f, 1, &args[0])?;
                let second = object_arg(f, 2, &args[1])?;
                match &args[2] {
                    Value::Bool(false) => {}
                    Value::Bool(true) => {
                        return Err(f.fail(
                            "deep merging is not supported; only the shallow mode is, so the third argument must be false",
                        ));
                    }
                    other => {
                        return Err(f.fail(format_args!(
                            "argument 3 must be a boolean, got {}",
                            describe(other)
                        )));
                    }
                }
                let mut merged = first.clone();
                for (key, value) in second {
                    merged.insert(key.clone(), value.clone());
                }
                Ok(Value::Object(merged))
            }
            Func::MathRandom => math_random(f, &args),
            Func::MathAdd => {
                let a = int32_arg(f, 1, &args[0])?;
                let b = int32_arg(f, 2, &args[1])?;
                Ok(Value::from(a + b))
            }
            Func::StringSplit => {
                let text = text_arg(f, 1, &args[0])?;
                let delimiters = text_arg(f, 2, &args[1])?;
                // Every character of the second argument is a delimiter, and empty tokens are
                // dropped (`StringTokenizer`).
                let parts = text
                    .split(|c| delimiters.contains(c))
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_string()))
                    .collect();
                Ok(Value::Array(parts))
            }
            Func::Uuid => Ok(Value::String(uuid_v4())),
        }
    }
}

fn format(f: Func, args: &[Value], escaped: &[usize]) -> Result<Value, AslError> {
    let template = text_arg(f, 1, &args[0])?;
    let values = &args[1..];
    let bytes = template.as_bytes();
    let is_placeholder = |i: usize| {
        bytes[i] == b'{'
            && bytes.get(i + 1) == Some(&b'}')
            && !escaped.contains(&i)
            && !escaped.contains(&(i + 1))
    };
    let placeholders = (0..bytes.len()).filter(|&i| is_placeholder(i)).count();
    if placeholders != values.len() {
        return Err(f.fail(format_args!(
            "the template has {placeholders} '{{}}' placeholder(s) but {} value(s) were given to fill them",
            values.len()
        )));
    }
    let mut out = String::with_capacity(template.len());
    let mut values = values.iter();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if is_placeholder(i) {
            out.push_str(&template[copied..i]);
            if let Some(v) = values.next() {
                write_java_string(&mut out, v);
            }
            i += 2;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&template[copied..]);
    Ok(Value::String(out))
}

fn string_to_json(f: Func, arg: &Value) -> Result<Value, AslError> {
    let text = text_arg(f, 1, arg)?;
    // AWS returns null for an empty or blank string rather than failing.
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|e| f.fail(format_args!("the argument is not valid JSON text ({e})")))
}

fn array_range(f: Func, args: &[Value]) -> Result<Value, AslError> {
    let start = int_arg(f, 1, &args[0])?;
    let end = int_arg(f, 2, &args[1])?;
    let step = int_arg(f, 3, &args[2])?;
    if step == 0 {
        return Err(f.fail("the step (argument 3) must not be zero"));
    }
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let count = if (step > 0 && start > end) || (step < 0 && start < end) {
        0
    } else {
        (end - start) / step + 1
    };
    if count > MAX_RANGE_ITEMS {
        return Err(f.fail(format_args!(
            "the range would hold {count} items, more than the {MAX_RANGE_ITEMS} allowed"
        )));
    }
    let items = (0..count)
        .map(|k| Value::from(i64::try_from(start + k * step).unwrap_or_default()))
        .collect();
    Ok(Value::Array(items))
}

fn hash(f: Func, args: &[Value]) -> Result<Value, AslError> {
    use sha2::Digest as _;
    let data = limited_text_arg(f, 1, &args[0])?.as_bytes();
    let algorithm = text_arg(f, 2, &args[1])?;
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        other => {
            return Err(f.fail(format_args!(
                "unsupported hash algorithm '{other}'; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
            )));
        }
    };
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(Value::String(hex))
}

fn math_random(f: Func, args: &[Value]) -> Result<Value, AslError> {
    let start = int_arg(f, 1, &args[0])?;
    let end = int_arg(f, 2, &args[1])?;
    let seed = match args.get(2) {
        Some(seed) => int_arg(f, 3, seed)?,
        None => entropy() as i64,
    };
    if start >= end {
        return Err(f.fail(format_args!(
            "the start ({start}) must be less than the end ({end}), which is exclusive"
        )));
    }
    // A seeded call is repeatable, as on AWS; the sequence is java.util.Random's, the
    // likeliest generator behind a JVM service.
    let mut rng = JavaRandom::new(seed);
    let bound = i128::from(end) - i128::from(start);
    let offset = match i32::try_from(bound) {
        Ok(bound) => i128::from(rng.next_int(bound)),
        Err(_) => i128::from(rng.next_u64()) % bound,
    };
    Ok(Value::from(
        i64::try_from(i128::from(start) + offset).unwrap_or(start),
    ))
}

// ---------------------------------------------------------------- argument checks

fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let mut text = String::new();
    write_json(&mut text, v);
    if text.chars().count() > 80 {
        text = text.chars().take(77).collect::<String>() + "...";
    }
    format!("{kind} {text}")
}

fn array_arg(f: Func, n: usize, v: &Value) -> Result<&Vec<Value>, AslError> {
    v.as_array().ok_or_else(|| {
        f.fail(format_args!(
            "argument {n} must be an array, got {}",
            describe(v)
        ))
    })
}

fn object_arg(f: Func, n: usize, v: &Value) -> Result<&Map<String, Value>, AslError> {
    v.as_object().ok_or_else(|| {
        f.fail(format_args!(
            "argument {n} must be a JSON object, got {}",
            describe(v)
        ))
    })
}

fn text_arg(f: Func, n: usize, v: &Value) -> Result<&str, AslError> {
    v.as_str().ok_or_else(|| {
        f.fail(format_args!(
            "argument {n} must be a string, got {}",
            describe(v)
        ))
    })
}

fn limited_text_arg(f: Func, n: usize, v: &Value) -> Result<&str, AslError> {
    let text = text_arg(f, n, v)?;
    // Java counts UTF-16 units.
    let len = text.encode_utf16().count();
    if len > MAX_TEXT_CHARS {
        return Err(f.fail(format_args!(
            "argument {n} has {len} characters, more than the {MAX_TEXT_CHARS} allowed"
        )));
    }
    Ok(text)
}

/// An integer argument; a fractional number is rounded half up (`Math.round`), as AWS
/// documents for every integer argument.
fn int_arg(f: Func, n: usize, v: &Value) -> Result<i64, AslError> {
    let not_integer = || {
        f.fail(format_args!(
            "argument {n} must be an integer, got {}",
            describe(v)
        ))
    };
    let Value::Number(num) = v else {
        return Err(not_integer());
    };
    if let Some(i) = num.as_i64() {
        return Ok(i);
    }
    let x = num.as_f64().ok_or_else(not_integer)?;
    let rounded = java_round(x);
    if rounded.is_finite() && rounded >= -(2f64.powi(63)) && rounded < 2f64.powi(63) {
        Ok(rounded as i64)
    } else {
        Err(f.fail(format_args!(
            "argument {n} is out of the integer range, got {}",
            describe(v)
        )))
    }
}

/// An integer argument limited to Java's `int`, as MathAdd documents.
fn int32_arg(f: Func, n: usize, v: &Value) -> Result<i64, AslError> {
    let i = int_arg(f, n, v)?;
    if i32::try_from(i).is_err() {
        return Err(f.fail(format_args!(
            "argument {n} must be between -2147483648 and 2147483647, got {i}"
        )));
    }
    Ok(i)
}

/// `Math.round`: half up, so -2.5 rounds to -2 and 2.5 to 3.
fn java_round(x: f64) -> f64 {
    let floor = x.floor();
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

// ---------------------------------------------------------------- equality

/// JSON equality where numbers compare by value (1 equals 1.0) and member order is ignored.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_key(x) == number_key(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A number's value as text, the same for 1 and 1.0, so equal numbers compare and hash alike.
fn number_key(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    if x == x.trunc() && x.abs() < 1e19 {
        // Integral floats within the integer types' reach print like integers.
        return format!("{}", x as i128);
    }
    format!("{x:e}")
}

/// A text that equal values (by [`json_eq`]) share, for de-duplication in one pass.
fn canonical_key(v: &Value) -> String {
    fn write(out: &mut String, v: &Value) {
        match v {
            Value::Number(n) => out.push_str(&number_key(n)),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k);
                    out.push(':');
                    write(out, v);
                }
                out.push('}');
            }
            other => write_json(out, other),
        }
    }
    let mut out = String::new();
    write(&mut out, v);
    out
}

// ---------------------------------------------------------------- rendering

/// `Double.toString`: plain decimals in [10^-3, 10^7) with at least one fractional digit,
/// otherwise `d.dddE[-]n`; integers as they are.
fn java_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    if (1e-3..1e7).contains(&x.abs()) {
        let plain = format!("{x}");
        return if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        };
    }
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// Compact JSON as Jackson writes it: no blanks, non-ASCII as is, control characters as
/// short escapes or `\u00XX` with upper-case hex digits.
fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as Java's `toString` shows it: strings bare, objects as `{k=v, k2=v2}`, arrays as
/// `[a, b]`.
fn write_java_string(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java_string(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java_string(out, v);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------- base64

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(
                    BASE64_ALPHABET[(n >> (18 - 6 * k)) as usize & 63],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard alphabet; padding optional (as Java's decoder); line breaks and blanks, which
/// MIME-wrapped input holds, are skipped.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut padding = 0;
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            continue;
        }
        if c == '=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err("the argument has data after base64 padding".into());
        }
        let value = match c {
            'A'..='Z' => u32::from(c) - u32::from('A'),
            'a'..='z' => u32::from(c) - u32::from('a') + 26,
            '0'..='9' => u32::from(c) - u32::from('0') + 52,
            '+' => 62,
            '/' => 63,
            _ => {
                return Err(format!(
                    "the argument is not base64: unexpected character {c:?}"
                ));
            }
        };
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Six leftover bits are one character too many; one or two '=' close a short group.
    if bits == 6 || padding > 2 {
        return Err("the argument is not base64: its length is not valid".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------- randomness

/// 64 unpredictable bits without a dependency: std's per-process random SipHash keys over a
/// counter and the clock. Enough for UUIDs and unseeded MathRandom, not for secrets.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&entropy().to_le_bytes());
    bytes[8..].copy_from_slice(&entropy().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `java.util.Random`: a 48-bit linear congruential generator.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextInt(bound)` for a positive bound.
    fn next_int(&mut self, bound: i32) -> i32 {
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((i64::from(bound) * i64::from(r)) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }

    fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next(32) as u32);
        let low = u64::from(self.next(32) as u32);
        (high << 32) | low
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    /// Follows `.name` and `[index]` steps from `root`; enough for the paths the cases use.
    fn lookup(root: &Value, steps: &str) -> Result<Value, AslError> {
        let missing = || AslError::runtime(format!("the path '{steps}' matches nothing"));
        let mut current = root;
        let mut rest = steps;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                current = current.get(&after[..end]).ok_or_else(missing)?;
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(missing)?;
                let index: usize = after[..end].parse().map_err(|_| missing())?;
                current = current.get(index).ok_or_else(missing)?;
                rest = &after[end + 1..];
            } else {
                return Err(missing());
            }
        }
        Ok(current.clone())
    }

    /// A context object shaped like the one AWS passes, with made-up names.
    fn context(input: &Value) -> Value {
        json!({
            "Execution": {
                "Id": "arn:aws:states:us-east-1:111111111111:execution:Machine-1a2b:exec-1",
                "Input": input,
                "Name": "exec-1",
                "RoleArn": "arn:aws:iam::111111111111:role/sfn",
                "StartTime": "2024-01-01T00:00:00.000Z"
            },
            "StateMachine": {
                "Id": "arn:aws:states:us-east-1:111111111111:stateMachine:Machine-1a2b",
                "Name": "Machine-1a2b"
            },
            "State": {"Name": "State_0", "EnteredTime": "2024-01-01T00:00:00.000Z"}
        })
    }

    fn eval_with(expr: &str, input: &Value) -> Result<Value, AslError> {
        let ctx = context(input);
        evaluate(expr, &|path: &str| {
            if let Some(steps) = path.strip_prefix("$$") {
                lookup(&ctx, steps)
            } else if let Some(steps) = path.strip_prefix('$') {
                lookup(input, steps)
            } else {
                Err(AslError::runtime(format!("unsupported path '{path}'")))
            }
        })
    }

    fn eval(expr: &str) -> Value {
        eval_with(expr, &Value::Null).expect(expr)
    }

    /// Asserts that `expr` fails with States.IntrinsicFailure and a cause naming `needle`.
    fn fails(expr: &str, input: Value, needle: &str) {
        let err = eval_with(expr, &input).expect_err(expr);
        assert_eq!(err.error, "States.IntrinsicFailure", "{expr}: {err}");
        assert!(
            err.cause.contains(needle),
            "{expr}: cause {:?} lacks {needle:?}",
            err.cause
        );
    }

    /// (case, expression, input, expected result) from every intrinsic conformance case
    /// (`intrinsic__<case>.json`) whose result AWS does not mask; the two masked ones are in
    /// `context_object_cases`.
    const CASES: &[(&str, &str, &str, &str)] = &[
        (
            "array_0",
            r#"States.Array()"#,
            r#"{"FunctionInput": "HelloWorld"}"#,
            r#"[]"#,
        ),
        (
            "array_2__exec2",
            r#"States.Array($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "HelloWorld", "snd": "HelloWorld"}}"#,
            r#"["HelloWorld", "HelloWorld"]"#,
        ),
        (
            "array_2__exec4",
            r#"States.Array($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1, "snd": 1}}"#,
            r#"[1, 1]"#,
        ),
        (
            "array_2__exec5",
            r#"States.Array($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.1, "snd": 1.1}}"#,
            r#"[1.1, 1.1]"#,
        ),
        (
            "array_2__exec6",
            r#"States.Array($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "{\"Arg1\": 1, \"Arg2\": []}", "snd": "{\"Arg1\": 1, \"Arg2\": []}"}}"#,
            r#"["{\"Arg1\": 1, \"Arg2\": []}", "{\"Arg1\": 1, \"Arg2\": []}"]"#,
        ),
        (
            "array_2__exec7",
            r#"States.Array($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": {"Arg1": 1, "Arg2": []}, "snd": {"Arg1": 1, "Arg2": []}}}"#,
            r#"[{"Arg1": 1, "Arg2": []}, {"Arg1": 1, "Arg2": []}]"#,
        ),
        (
            "array_contains__exec1",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [], "snd": []}}"#,
            r#"false"#,
        ),
        (
            "array_contains__exec2",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [], "snd": 1}}"#,
            r#"false"#,
        ),
        (
            "array_contains__exec3",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [[1, 2, 3], 2], "snd": null}}"#,
            r#"false"#,
        ),
        (
            "array_contains__exec4",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [[1, 2, 3], 2], "snd": [1, 2, 3]}}"#,
            r#"true"#,
        ),
        (
            "array_contains__exec6",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [{"1": 2, "2": []}], "snd": {"1": 2, "2": []}}}"#,
            r#"true"#,
        ),
        (
            "array_contains__exec7",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [true, false], "snd": true}}"#,
            r#"true"#,
        ),
        (
            "array_contains__exec8",
            r#"States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [true, false], "snd": false}}"#,
            r#"true"#,
        ),
        (
            "array_get_item",
            r#"States.ArrayGetItem($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [1, 2, 3, 4, 5, 6, 7, 8, 9], "snd": 5}}"#,
            r#"6"#,
        ),
        (
            "array_partition__exec0",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [], "snd": 1}}"#,
            r#"[]"#,
        ),
        (
            "array_partition__exec11",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1], "snd": 2}}"#,
            r#"[[0, 1]]"#,
        ),
        (
            "array_partition__exec14",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1], "snd": 5}}"#,
            r#"[[0, 1]]"#,
        ),
        (
            "array_partition__exec15",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2], "snd": 1}}"#,
            r#"[[0], [1], [2]]"#,
        ),
        (
            "array_partition__exec16",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2], "snd": 2}}"#,
            r#"[[0, 1], [2]]"#,
        ),
        (
            "array_partition__exec17",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2], "snd": 3}}"#,
            r#"[[0, 1, 2]]"#,
        ),
        (
            "array_partition__exec18",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2], "snd": 4}}"#,
            r#"[[0, 1, 2]]"#,
        ),
        (
            "array_partition__exec20",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2, 3], "snd": 1}}"#,
            r#"[[0], [1], [2], [3]]"#,
        ),
        (
            "array_partition__exec21",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2, 3], "snd": 2}}"#,
            r#"[[0, 1], [2, 3]]"#,
        ),
        (
            "array_partition__exec22",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2, 3], "snd": 3}}"#,
            r#"[[0, 1, 2], [3]]"#,
        ),
        (
            "array_partition__exec23",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2, 3], "snd": 4}}"#,
            r#"[[0, 1, 2, 3]]"#,
        ),
        (
            "array_partition__exec24",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0, 1, 2, 3], "snd": 5}}"#,
            r#"[[0, 1, 2, 3]]"#,
        ),
        (
            "array_partition__exec4",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [], "snd": 5}}"#,
            r#"[]"#,
        ),
        (
            "array_partition__exec5",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0], "snd": 1}}"#,
            r#"[[0]]"#,
        ),
        (
            "array_partition__exec6",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0], "snd": 2}}"#,
            r#"[[0]]"#,
        ),
        (
            "array_partition__exec8",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0], "snd": 4}}"#,
            r#"[[0]]"#,
        ),
        (
            "array_partition__exec9",
            r#"States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": [0], "snd": 5}}"#,
            r#"[[0]]"#,
        ),
        (
            "array_range__exec0",
            r#"States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)"#,
            r#"{"FunctionInput": {"fst": 0, "snd": 9, "trd": 3}}"#,
            r#"[0, 3, 6, 9]"#,
        ),
        (
            "array_range__exec2",
            r#"States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)"#,
            r#"{"FunctionInput": {"fst": 1, "snd": 9, "trd": 9}}"#,
            r#"[1]"#,
        ),
        (
            "array_range__exec3",
            r#"States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)"#,
            r#"{"FunctionInput": {"fst": 1, "snd": 9, "trd": 2}}"#,
            r#"[1, 3, 5, 7, 9]"#,
        ),
        (
            "array_unique",
            r#"States.ArrayLength($.FunctionInput)"#,
            r#"{"FunctionInput": [null, null, true, true, false, false, 1, 1, 1.1, 0, 0, "HelloWorld", "HelloWorld", [], [], [null], [null], {"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "b": 1}]}"#,
            r#"20"#,
        ),
        (
            "base_64_decode__exec0",
            r#"States.Base64Decode($.FunctionInput)"#,
            r#"{"FunctionInput": ""}"#,
            r#""""#,
        ),
        (
            "base_64_decode__exec1",
            r#"States.Base64Decode($.FunctionInput)"#,
            r#"{"FunctionInput": "RGF0YSB0byBlbmNvZGU="}"#,
            r#""Data to encode""#,
        ),
        (
            "base_64_encode__exec0",
            r#"States.Base64Encode($.FunctionInput)"#,
            r#"{"FunctionInput": ""}"#,
            r#""""#,
        ),
        (
            "base_64_encode__exec1",
            r#"States.Base64Encode($.FunctionInput)"#,
            r#"{"FunctionInput": "Data to encode"}"#,
            r#""RGF0YSB0byBlbmNvZGU=""#,
        ),
        (
            "escape_sequence",
            "States.StringSplit('Hello\nWorld', '\n')",
            r#"{"FunctionInput": null}"#,
            r#"["Hello", "World"]"#,
        ),
        (
            "format_1__exec0",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": ""}"#,
            r#""Formatting argument .""#,
        ),
        (
            "format_1__exec1",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": " "}"#,
            r#""Formatting argument  .""#,
        ),
        (
            "format_1__exec2",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": "HelloWorld"}"#,
            r#""Formatting argument HelloWorld.""#,
        ),
        (
            "format_1__exec3",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": null}"#,
            r#""Formatting argument null.""#,
        ),
        (
            "format_1__exec4",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": 1}"#,
            r#""Formatting argument 1.""#,
        ),
        (
            "format_1__exec5",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": 1.1}"#,
            r#""Formatting argument 1.1.""#,
        ),
        (
            "format_1__exec6",
            r#"States.Format('Formatting argument {}.', $.FunctionInput)"#,
            r#"{"FunctionInput": "{\"Arg1\": 1, \"Arg2\": []}"}"#,
            r#""Formatting argument {\"Arg1\": 1, \"Arg2\": []}.""#,
        ),
        (
            "format_2__exec1",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": " ", "snd": " "}}"#,
            r#""Formatting arguments fst=  and snd= .""#,
        ),
        (
            "format_2__exec2",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "HelloWorld", "snd": "HelloWorld"}}"#,
            r#""Formatting arguments fst=HelloWorld and snd=HelloWorld.""#,
        ),
        (
            "format_2__exec3",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": null, "snd": null}}"#,
            r#""Formatting arguments fst=null and snd=null.""#,
        ),
        (
            "format_2__exec4",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1, "snd": 1}}"#,
            r#""Formatting arguments fst=1 and snd=1.""#,
        ),
        (
            "format_2__exec5",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.1, "snd": 1.1}}"#,
            r#""Formatting arguments fst=1.1 and snd=1.1.""#,
        ),
        (
            "format_2__exec7",
            r#"States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": {"Arg1": 1, "Arg2": []}, "snd": {"Arg1": 1, "Arg2": []}}}"#,
            r#""Formatting arguments fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}.""#,
        ),
        (
            "hash__exec0",
            r#"States.Hash($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "input data", "snd": "MD5"}}"#,
            r#""812f45842bc6d66ee14572ce20db8e86""#,
        ),
        (
            "hash__exec1",
            r#"States.Hash($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "input data", "snd": "SHA-1"}}"#,
            r#""aaff4a450a104cd177d28d18d74485e8cae074b7""#,
        ),
        (
            "hash__exec2",
            r#"States.Hash($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "input data", "snd": "SHA-256"}}"#,
            r#""b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3""#,
        ),
        (
            "hash__exec4",
            r#"States.Hash($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "input data", "snd": "SHA-512"}}"#,
            r#""6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4""#,
        ),
        (
            "json_merge",
            r#"States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd, false)"#,
            r#"{"FunctionInput": {"fst": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}, "snd": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}}}"#,
            r#"{"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3, "d": 4}"#,
        ),
        (
            "json_merge_escaped_argument",
            r#"States.JsonMerge(States.StringToJson('{"constant_in_literal": "false"}'), $$.Execution.Input.input_field, false)"#,
            r#"{"input_field": {"constant_input_field": "constant_value"}}"#,
            r#"{"constant_input_field": "constant_value", "constant_in_literal": "false"}"#,
        ),
        (
            "json_to_string__exec0",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": null}"#,
            r#""null""#,
        ),
        (
            "json_to_string__exec1",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": 0}"#,
            r#""0""#,
        ),
        (
            "json_to_string__exec2",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": 1}"#,
            r#""1""#,
        ),
        (
            "json_to_string__exec3",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": 1.1}"#,
            r#""1.1""#,
        ),
        (
            "json_to_string__exec4",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": true}"#,
            r#""true""#,
        ),
        (
            "json_to_string__exec5",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": "HelloWorld"}"#,
            r#""\"HelloWorld\"""#,
        ),
        (
            "json_to_string__exec6",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": [1, 2, "HelloWorld"]}"#,
            r#""[1,2,\"HelloWorld\"]""#,
        ),
        (
            "json_to_string__exec7",
            r#"States.JsonToString($.FunctionInput)"#,
            r#"{"FunctionInput": {"Arg1": 1, "Arg2": []}}"#,
            r#""{\"Arg1\":1,\"Arg2\":[]}""#,
        ),
        (
            "math_add__exec0",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -9, "snd": 3}}"#,
            r#"-6"#,
        ),
        (
            "math_add__exec1",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.49, "snd": 1.5}}"#,
            r#"3"#,
        ),
        (
            "math_add__exec10",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -1.5, "snd": 0}}"#,
            r#"-1"#,
        ),
        (
            "math_add__exec12",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 0.5, "snd": 0}}"#,
            r#"1"#,
        ),
        (
            "math_add__exec13",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.5, "snd": 0}}"#,
            r#"2"#,
        ),
        (
            "math_add__exec14",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 2.5, "snd": 0}}"#,
            r#"3"#,
        ),
        (
            "math_add__exec15",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 3.5, "snd": 0}}"#,
            r#"4"#,
        ),
        (
            "math_add__exec16",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -0.5, "snd": 0.5}}"#,
            r#"1"#,
        ),
        (
            "math_add__exec17",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -0.5, "snd": 0}}"#,
            r#"0"#,
        ),
        (
            "math_add__exec18",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -1.5, "snd": 0}}"#,
            r#"-1"#,
        ),
        (
            "math_add__exec19",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -2.5, "snd": 0}}"#,
            r#"-2"#,
        ),
        (
            "math_add__exec20",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -3.5, "snd": 0}}"#,
            r#"-3"#,
        ),
        (
            "math_add__exec3",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": -1.49, "snd": -1.5}}"#,
            r#"-2"#,
        ),
        (
            "math_add__exec5",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.49, "snd": 0}}"#,
            r#"1"#,
        ),
        (
            "math_add__exec6",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.49, "snd": -1.49}}"#,
            r#"0"#,
        ),
        (
            "math_add__exec7",
            r#"States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": 1.5, "snd": 0}}"#,
            r#"2"#,
        ),
        (
            "string_split__exec1",
            r#"States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": " , ", "snd": ","}}"#,
            r#"[" ", " "]"#,
        ),
        (
            "string_split__exec2",
            r#"States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": ", , ,", "snd": ","}}"#,
            r#"[" ", " "]"#,
        ),
        (
            "string_split__exec4",
            r#"States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)"#,
            r#"{"FunctionInput": {"fst": "1,2,3,4,5", "snd": ","}}"#,
            r#"["1", "2", "3", "4", "5"]"#,
        ),
        (
            "string_split_context_object",
            r#"States.StringSplit($$.Execution.Input.FunctionInput, ',')"#,
            r#"{"FunctionInput": "Value1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"}"#,
            r#"["Value1", "Value2", "Value3\nValue4", "Value5", "Value6\n", "\ntrue", "1", "'HelloWorld'\nNull", "None", "\n   \n"]"#,
        ),
        (
            "string_to_json__exec0",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": ""}"#,
            r#"null"#,
        ),
        (
            "string_to_json__exec1",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": " "}"#,
            r#"null"#,
        ),
        (
            "string_to_json__exec3",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "-0"}"#,
            r#"0"#,
        ),
        (
            "string_to_json__exec4",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "1"}"#,
            r#"1"#,
        ),
        (
            "string_to_json__exec5",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "1.1"}"#,
            r#"1.1"#,
        ),
        (
            "string_to_json__exec6",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "true"}"#,
            r#"true"#,
        ),
        (
            "string_to_json__exec7",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "\"HelloWorld\""}"#,
            r#""HelloWorld""#,
        ),
        (
            "string_to_json__exec8",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "[1, 2, \"HelloWorld\"]"}"#,
            r#"[1, 2, "HelloWorld"]"#,
        ),
        (
            "string_to_json__exec9",
            r#"States.StringToJson($.FunctionInput)"#,
            r#"{"FunctionInput": "{\"Arg1\": 1, \"Arg2\": []}"}"#,
            r#"{"Arg1": 1, "Arg2": []}"#,
        ),
    ];

    #[test]
    fn conformance_cases() {
        let mut failures = Vec::new();
        for (case, expr, input, expected) in CASES {
            let input: Value = serde_json::from_str(input).expect(case);
            let expected: Value = serde_json::from_str(expected).expect(case);
            match eval_with(expr, &input) {
                Ok(got) if json_eq(&got, &expected) => {}
                Ok(got) => failures.push(format!("{case}: {expr} gave {got}, expected {expected}")),
                Err(err) => failures.push(format!("{case}: {expr} failed: {err}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} failed:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
        assert_eq!(CASES.len(), 96);
    }

    #[test]
    fn context_object_cases() {
        // intrinsic__nested_calls_1
        let got = eval("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)");
        assert_eq!(got, json!("Machine"));
        // intrinsic__context_json_path
        let got = eval(
            "States.Format('Formatting arguments fst={} and snd={}.', $$.Execution.Name, $$.StateMachine)",
        );
        assert_eq!(
            got,
            json!(
                "Formatting arguments fst=exec-1 and snd={Id=arn:aws:states:us-east-1:111111111111:stateMachine:Machine-1a2b, Name=Machine-1a2b}."
            )
        );
    }

    #[test]
    fn literal_arguments() {
        assert_eq!(
            eval("States.Array(1, -2, 2.5, -0.25, 1e2, 'a', true, false, null)"),
            json!([1, -2, 2.5, -0.25, 100.0, "a", true, false, null])
        );
        assert!(
            eval("States.Array(7)")[0].is_i64(),
            "an integer literal stays an integer"
        );
        assert_eq!(eval("  States.Array( 1 ,\t'x' )  "), json!([1, "x"]));
        assert_eq!(
            eval("States.Array(States.Array(), States.Array(States.Array(1)))"),
            json!([[], [[1]]])
        );
    }

    #[test]
    fn string_literal_escapes() {
        assert_eq!(
            eval(r"States.Format('it\'s \\ {}', 'x')"),
            json!(r"it's \ x")
        );
        // An escaped brace is text, never half of a placeholder.
        assert_eq!(eval(r"States.Format('\{} {} \{\}', 'x')"), json!("{} x {}"));
        assert_eq!(eval(r"States.Format('\{{}\}', 'x')"), json!("{x}"));
        assert_eq!(
            eval(r"States.Array('\u00e9\ud83d\ude00', 'a\nb')"),
            json!(["é😀", "a\nb"])
        );
        // Unescaped braces are accepted in literals (intrinsic__json_merge_escaped_argument).
        assert_eq!(
            eval(r#"States.StringToJson('{"a": [1]}')"#),
            json!({"a": [1]})
        );
    }

    #[test]
    fn paths_are_passed_through_whole() {
        let seen = RefCell::new(Vec::new());
        let resolve = |path: &str| -> Result<Value, AslError> {
            seen.borrow_mut().push(path.to_string());
            Ok(json!(1))
        };
        let expr = "States.Array($, $$, $.a.b[0], $['x, y'].z, $.c[?(@.d == 'e)')], $myVar.f, $$.Map.Item.Value)";
        evaluate(expr, &resolve).expect(expr);
        assert_eq!(
            *seen.borrow(),
            [
                "$",
                "$$",
                "$.a.b[0]",
                "$['x, y'].z",
                "$.c[?(@.d == 'e)')]",
                "$myVar.f",
                "$$.Map.Item.Value"
            ]
        );
    }

    #[test]
    fn resolve_errors_pass_through() {
        let err =
            eval_with("States.Format('{}', $.missing)", &json!({})).expect_err("missing path");
        assert_eq!(err.error, "States.Runtime");
    }

    #[test]
    fn variables_resolve_through_the_callback() {
        let resolve = |path: &str| -> Result<Value, AslError> {
            match path {
                "$AnswerTemplate" => Ok(json!("It's {}!")),
                "$$.Map.Item.Value" => Ok(json!("Pikachu")),
                other => Err(AslError::runtime(other)),
            }
        };
        let got = evaluate(
            "States.Format($AnswerTemplate, $$.Map.Item.Value)",
            &resolve,
        )
        .expect("format");
        assert_eq!(got, json!("It's Pikachu!"));
    }

    #[test]
    fn format_renders_values_like_java() {
        let input = json!({
            "obj": {"z": 1, "a": [1, "x", null, true], "n": {"f": 1.5}},
            "nums": [1.0, 1e20, 0.0001, 0.001, 1234567.0, 12345678.9, -2.5e-7, 0]
        });
        let got = eval_with("States.Format('{} / {}', $.obj, $.nums)", &input).expect("format");
        assert_eq!(
            got,
            json!(
                "{z=1, a=[1, x, null, true], n={f=1.5}} / [1.0, 1.0E20, 1.0E-4, 0.001, 1234567.0, 1.23456789E7, -2.5E-7, 0]"
            )
        );
        assert_eq!(
            eval("States.Format('{}{}{}', 'ü', 'x', '😀')"),
            json!("üx😀")
        );
        assert_eq!(
            eval("States.Format('no placeholders')"),
            json!("no placeholders")
        );
    }

    #[test]
    fn json_to_string_writes_compact_jackson_json() {
        let input = json!({"v": {"b": 1.0, "a": "é\u{1f}\"\\\n", "c": [null, false, -3, 2.5e30]}});
        let got = eval_with("States.JsonToString($.v)", &input).expect("json");
        assert_eq!(
            got,
            json!(r#"{"b":1.0,"a":"é\u001F\"\\\n","c":[null,false,-3,2.5E30]}"#)
        );
    }

    #[test]
    fn string_to_json_parses_and_keeps_member_order() {
        let got = eval(r#"States.StringToJson('{"z": 1, "a": {"y": 2, "b": 3}}')"#);
        let keys: Vec<_> = got.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["z", "a"]);
        assert_eq!(eval("States.StringToJson('  ')"), Value::Null);
        fails("States.StringToJson('{')", Value::Null, "not valid JSON");
        fails(
            "States.StringToJson($.n)",
            json!({"n": 1}),
            "argument 1 must be a string, got number 1",
        );
    }

    #[test]
    fn array_functions() {
        assert_eq!(
            eval_with("States.ArrayPartition($.a, 1.5)", &json!({"a": [1, 2, 3]})).expect("p"),
            json!([[1, 2], [3]])
        );
        assert_eq!(eval("States.ArrayRange(9, 1, -2)"), json!([9, 7, 5, 3, 1]));
        assert_eq!(eval("States.ArrayRange(5, 1, 1)"), json!([]));
        assert_eq!(eval("States.ArrayRange(0.5, 2.4, 1)"), json!([1, 2]));
        assert_eq!(
            eval("States.ArrayRange(1, 1000, 1)")
                .as_array()
                .map(Vec::len),
            Some(1000)
        );
        assert_eq!(
            eval("States.ArrayGetItem(States.Array('a', 'b'), 1)"),
            json!("b")
        );
        assert_eq!(eval("States.ArrayLength(States.Array())"), json!(0));
        let input = json!({"a": [1, 1.0, 2, {"a": 1, "b": 2}, {"b": 2, "a": 1}, [1], [1], "1", null, null]});
        assert_eq!(
            eval_with("States.ArrayUnique($.a)", &input).expect("unique"),
            json!([1, 2, {"a": 1, "b": 2}, [1], "1", null])
        );
        assert_eq!(
            eval("States.ArrayContains(States.Array(1, 2), 2.0)"),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains(States.Array('1'), 1)"),
            json!(false)
        );
    }

    #[test]
    fn encoding_and_hashing() {
        assert_eq!(eval("States.Base64Encode('ü😀')"), json!("w7zwn5iA"));
        assert_eq!(eval("States.Base64Decode('w7zwn5iA')"), json!("ü😀"));
        assert_eq!(eval("States.Base64Decode('RGF0YQ')"), json!("Data"));
        assert_eq!(eval("States.Base64Decode('RGF0\r\nYQ==')"), json!("Data"));
        assert_eq!(eval("States.Base64Decode('/w==')"), json!("\u{fffd}"));
        assert_eq!(
            eval("States.Hash('input data', 'SHA-384')"),
            json!(
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"
            )
        );
        assert_eq!(
            eval("States.Hash('héllo ✓ 😀', 'SHA-256')"),
            json!("ed48bf1a238c902172191a3a1f46532d86cc20dc6bea2f3f9a90215097b1e10c")
        );
    }

    #[test]
    fn json_merge_is_shallow_and_keeps_order() {
        let input = json!({"x": {"b": 1, "a": {"k": 1}}, "y": {"c": 2, "a": {"j": 2}}});
        let got = eval_with("States.JsonMerge($.x, $.y, false)", &input).expect("merge");
        assert_eq!(got, json!({"b": 1, "a": {"j": 2}, "c": 2}));
        let keys: Vec<_> = got.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn math_functions() {
        assert_eq!(eval("States.MathAdd(2147483647, 1)"), json!(2147483648_i64));
        assert_eq!(eval("States.MathAdd(-2.5, 0.5)"), json!(-1));
        for _ in 0..200 {
            let n = eval("States.MathRandom(-3, 3)").as_i64().expect("integer");
            assert!((-3..3).contains(&n), "{n} is outside [-3, 3)");
        }
        let seeded = eval("States.MathRandom(0, 1000, 42)");
        assert_eq!(seeded, eval("States.MathRandom(0, 1000, 42)"));
        assert!(seeded.as_i64().is_some_and(|n| (0..1000).contains(&n)));
        assert_eq!(eval("States.MathRandom(5, 6)"), json!(5));
    }

    #[test]
    fn java_random_matches_the_jdk() {
        // `new Random(0).nextInt()` and `new Random(42).nextInt()` on any JDK.
        assert_eq!(JavaRandom::new(0).next(32), -1_155_484_576);
        assert_eq!(JavaRandom::new(42).next(32), -1_170_105_035);
    }

    #[test]
    fn uuid_is_random_version_4() {
        let a = eval("States.UUID()");
        let b = eval("States.UUID()");
        assert_ne!(a, b);
        let text = a.as_str().expect("string");
        let groups: Vec<_> = text.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(
            text.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(&text[14..15], "4");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn string_split_edge_cases() {
        assert_eq!(
            eval("States.StringSplit('This.is+a,test=string', '.+,=')"),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(eval("States.StringSplit('a b', '')"), json!(["a b"]));
        assert_eq!(eval("States.StringSplit(',,', ',')"), json!([]));
        assert_eq!(eval("States.StringSplit('é→ü→', '→')"), json!(["é", "ü"]));
    }

    #[test]
    fn wrong_argument_types_and_values() {
        let input = json!({"s": "text", "n": 3, "a": [1, 2], "o": {"k": 1}});
        fails(
            "States.Format($.n)",
            input.clone(),
            "argument 1 must be a string, got number 3",
        );
        fails(
            "States.Format('{} {}', 1)",
            input.clone(),
            "2 '{}' placeholder(s) but 1 value(s)",
        );
        fails(
            "States.Format('{}', 1, 2)",
            input.clone(),
            "1 '{}' placeholder(s) but 2 value(s)",
        );
        fails(
            "States.ArrayPartition($.s, 2)",
            input.clone(),
            "argument 1 must be an array, got string \"text\"",
        );
        fails(
            "States.ArrayPartition($.a, 0)",
            input.clone(),
            "chunk size must be a positive integer",
        );
        fails(
            "States.ArrayPartition($.a, 0.4)",
            input.clone(),
            "chunk size must be a positive integer",
        );
        fails(
            "States.ArrayPartition($.a, 'x')",
            input.clone(),
            "argument 2 must be an integer",
        );
        fails(
            "States.ArrayContains($.o, 1)",
            input.clone(),
            "argument 1 must be an array, got object",
        );
        fails(
            "States.ArrayRange(1, 9, 0)",
            input.clone(),
            "must not be zero",
        );
        fails("States.ArrayRange(0, 1000, 1)", input.clone(), "1001 items");
        fails(
            "States.ArrayRange(0, true, 1)",
            input.clone(),
            "argument 2 must be an integer, got boolean true",
        );
        fails(
            "States.ArrayGetItem($.a, 2)",
            input.clone(),
            "index 2 is out of bounds for an array of length 2",
        );
        fails(
            "States.ArrayGetItem($.a, -1)",
            input.clone(),
            "index -1 is out of bounds",
        );
        fails(
            "States.ArrayLength($.n)",
            input.clone(),
            "argument 1 must be an array",
        );
        fails(
            "States.ArrayUnique(null)",
            input.clone(),
            "argument 1 must be an array, got null",
        );
        fails(
            "States.Base64Encode($.n)",
            input.clone(),
            "argument 1 must be a string",
        );
        fails("States.Base64Decode('a*b=')", input.clone(), "not base64");
        fails("States.Base64Decode('abcde')", input.clone(), "not base64");
        fails(
            "States.Hash($.o, 'MD5')",
            input.clone(),
            "argument 1 must be a string",
        );
        fails(
            "States.Hash('x', 'SHA-224')",
            input.clone(),
            "unsupported hash algorithm 'SHA-224'",
        );
        fails(
            "States.JsonMerge($.o, $.o, true)",
            input.clone(),
            "deep merging is not supported",
        );
        fails(
            "States.JsonMerge($.o, $.a, false)",
            input.clone(),
            "argument 2 must be a JSON object",
        );
        fails(
            "States.JsonMerge($.o, $.o, 'false')",
            input.clone(),
            "argument 3 must be a boolean",
        );
        fails(
            "States.MathAdd($.s, 1)",
            input.clone(),
            "argument 1 must be an integer",
        );
        fails(
            "States.MathAdd(2147483648, 1)",
            input.clone(),
            "between -2147483648 and 2147483647",
        );
        fails(
            "States.MathRandom(5, 5)",
            input.clone(),
            "must be less than the end",
        );
        fails(
            "States.StringSplit($.a, ',')",
            input.clone(),
            "argument 1 must be a string",
        );
        let long = "x".repeat(10_001);
        fails(
            "States.Base64Encode($.s)",
            json!({"s": long}),
            "10001 characters, more than the 10000 allowed",
        );
        fails(
            "States.Hash($.s, 'MD5')",
            json!({"s": long}),
            "more than the 10000 allowed",
        );
    }

    #[test]
    fn wrong_argument_counts() {
        fails(
            "States.MathAdd(1)",
            Value::Null,
            "States.MathAdd: expected 2 arguments, got 1",
        );
        fails(
            "States.JsonToString(1, 2)",
            Value::Null,
            "States.JsonToString: expected 1 argument, got 2",
        );
        fails(
            "States.UUID(1)",
            Value::Null,
            "States.UUID: expected 0 arguments, got 1",
        );
        fails(
            "States.MathRandom(1, 2, 3, 4)",
            Value::Null,
            "expected 2 to 3 arguments, got 4",
        );
        fails(
            "States.Format()",
            Value::Null,
            "expected at least 1 argument, got 0",
        );
        fails(
            "States.JsonMerge(States.Array(), States.Array())",
            Value::Null,
            "expected 3 arguments, got 2",
        );
    }

    #[test]
    fn malformed_calls() {
        let cases = [
            ("States.Nope(1)", "unknown intrinsic function 'States.Nope'"),
            ("Format('x')", "expected an intrinsic function"),
            ("States.Array(1,)", "missing argument"),
            ("States.Array(1", "missing ')'"),
            ("States.Array(1) x", "unexpected text after"),
            ("States.Array('abc)", "unterminated string literal"),
            (r"States.Array('a\qb')", r"invalid escape sequence '\q'"),
            ("States.Array(01)", "invalid number '01'"),
            ("States.Array(1 2)", "expected ',' or ')'"),
            ("States.Array(True)", "unexpected 'True'"),
            ("States.Array($.a[0)", "unbalanced '['"),
            ("States.Array(#)", "unexpected character"),
        ];
        for (expr, needle) in cases {
            fails(expr, Value::Null, needle);
        }
        let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
        fails(&deep, Value::Null, "more than 10 nested");
        let ten = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
        assert!(eval_with(&ten, &Value::Null).is_ok());
    }
}
