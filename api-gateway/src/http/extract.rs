//! From raw request parts to a typed, validated request.
//!
//! The router hands every handler an [`Input`]: the path parameters of its
//! pattern (percent-decoded), the query already checked against the
//! route's declared parameters, and the body bytes (at most
//! [`super::router::MAX_BODY`]), parsed at most once whoever reads them
//! first: the request type or the audit line ([`Input::body_json`]). A
//! request type implements [`FromInput`] to pick what it needs. The rules are the same on every route:
//!
//! - a query parameter the route does not declare is `unknown_parameter`;
//! - a parameter given with an empty value is `invalid_parameter`;
//! - a single-valued parameter given twice is `invalid_parameter`; a
//!   list-valued one (`fields`) may repeat, and its values add up;
//! - a body is one JSON object decoded with `deny_unknown_fields`: an
//!   unknown member is `unknown_field` naming it, a missing or `null`
//!   required member is `invalid_field` naming it;
//! - a member given twice in one object, at any depth, is
//!   `duplicate_field` naming it: parsers disagree on which one counts
//!   (serde_json's `Value` keeps the last, others the first), so a body
//!   that means one thing to a proxy or a log reader and another here is
//!   refused rather than read either way ([`parse_body`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{DeserializeOwned, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A query parameter a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    /// May repeat; values are kept in order.
    pub list: bool,
}

impl Param {
    pub const fn one(name: &'static str) -> Param {
        Param { name, list: false }
    }
    pub const fn list(name: &'static str) -> Param {
        Param { name, list: true }
    }
}

/// What a handler's request type is built from.
#[derive(Debug, Default)]
pub struct Input {
    /// `{name}` segments of the route pattern, percent-decoded.
    pub path: Vec<(&'static str, String)>,
    /// Declared parameters that were given, each with its values.
    pub query: BTreeMap<&'static str, Vec<String>>,
    /// The body; empty when none was sent.
    pub body: Bytes,
    /// The request headers (`Range`, `Last-Event-ID`).
    pub headers: hyper::HeaderMap,
    /// `body` as parsed by [`parse_body`], once asked for: the handler's
    /// request type and the audit line read the same parse.
    parsed: OnceLock<Result<Value, ApiError>>,
}

impl Input {
    pub fn new(
        path: Vec<(&'static str, String)>,
        query: BTreeMap<&'static str, Vec<String>>,
        body: Bytes,
        headers: hyper::HeaderMap,
    ) -> Input {
        Input {
            path,
            query,
            body,
            headers,
            parsed: OnceLock::new(),
        }
    }

    /// The path parameter `name` (the router guarantees it is present).
    pub fn path(&self, name: &str) -> Result<&str, ApiError> {
        self.path
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::Internal(format!("route has no path parameter {name}")))
    }

    /// The single value of a declared single-valued parameter.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of a list parameter, in order.
    pub fn list(&self, name: &str) -> &[String] {
        self.query.get(name).map_or(&[], Vec::as_slice)
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: hyper::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decodes the body as `T` (a `deny_unknown_fields` struct).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        decode_value(self.body_json()?.clone())
    }

    /// The body as one strict JSON object ([`parse_body`]), parsed on the
    /// first call only.
    pub fn body_json(&self) -> Result<&Value, ApiError> {
        self.parsed
            .get_or_init(|| parse_body(&self.body))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A request type built from [`Input`].
pub trait FromInput: Sized + Send + 'static {
    /// The query parameters this request takes (the router refuses others).
    const QUERY: &'static [Param] = &[];
    /// Whether a body is read.
    const BODY: bool = false;

    fn from_input(input: &Input) -> Result<Self, ApiError>;
}

/// Routes without parameters or body.
#[derive(Debug)]
pub struct Nothing;

impl FromInput for Nothing {
    fn from_input(_: &Input) -> Result<Nothing, ApiError> {
        Ok(Nothing)
    }
}

/// Splits and checks a raw query string against `accepted`.
pub fn parse_query(
    raw: Option<&str>,
    accepted: &[Param],
) -> Result<BTreeMap<&'static str, Vec<String>>, ApiError> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(k, true)
            .ok_or_else(|| ApiError::InvalidParameter(format!("query name {k:?} is not UTF-8")))?;
        let Some(p) = accepted.iter().find(|p| p.name == name) else {
            return Err(ApiError::UnknownParameter {
                name,
                accepted: if accepted.is_empty() {
                    "no parameters".into()
                } else {
                    accepted
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        };
        let value = percent_decode(v, true).ok_or_else(|| {
            ApiError::InvalidParameter(format!("{} value {v:?} is not UTF-8", p.name))
        })?;
        if value.is_empty() {
            return Err(ApiError::InvalidParameter(format!(
                "{} is empty; omit it or give a value",
                p.name
            )));
        }
        let slot = out.entry(p.name).or_default();
        if !p.list && !slot.is_empty() {
            return Err(ApiError::InvalidParameter(format!(
                "{} is given more than once; it takes one value",
                p.name
            )));
        }
        slot.push(value);
    }
    Ok(out)
}

/// Decodes `%XX` (and, in a query, `+` as a space). `None` if the result
/// is not UTF-8; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str, query: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if query && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A parsed body into `T`, with errors that name the member.
fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        // serde's wording for `deny_unknown_fields`; pinned by a test.
        if msg.starts_with("unknown field") {
            ApiError::UnknownField(msg)
        } else {
            ApiError::InvalidField(msg)
        }
    })
}

/// The body as one JSON object in which no object, at any depth, names a
/// member twice. Every body is read through here, once per request
/// ([`Input::body_json`]), for the handlers and the audit line alike, so
/// both see the same members.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "this route needs a JSON object body".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = de
        .deserialize_any(Strict)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match e.classify() {
            // Only `Strict` raises a data error: the JSON itself was valid.
            serde_json::error::Category::Data => ApiError::DuplicateField(e.to_string()),
            _ => ApiError::InvalidJson(format!("body is not valid JSON: {e}")),
        })?;
    if !value.is_object() {
        return Err(ApiError::InvalidJson("body must be a JSON object".into()));
    }
    Ok(value)
}

/// Builds a [`Value`] like serde_json's own, but fails on the second
/// occurrence of a member instead of letting it replace the first.
struct Strict;

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(s.into())
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(s.into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if out.contains_key(&name) {
                return Err(A::Error::custom(format!(
                    "member {name:?} is given more than once in one object; \
                     give each member once"
                )));
            }
            let v = map.next_value_seed(StrictSeed)?;
            out.insert(name, v);
        }
        Ok(Value::Object(out))
    }
}

/// [`Strict`] for the values inside arrays and objects.
struct StrictSeed;

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

/// For `Option` members that may be absent but not `null`: absent is
/// `None` (with `#[serde(default)]`), a value is `Some`, `null` reaches the
/// inner type's deserializer and is refused there with its message.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// What a handler's `input.json()` gives for `body`.
#[cfg(test)]
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Input::new(
        Vec::new(),
        BTreeMap::new(),
        Bytes::copy_from_slice(body),
        Default::default(),
    )
    .json()
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &[Param] = &[Param::list("fields"), Param::one("user")];

    #[test]
    fn percent_decoding_never_panics_on_odd_input() {
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%", true).as_deref(), Some("%"));
        assert_eq!(percent_decode("%4", true).as_deref(), Some("%4"));
        assert_eq!(percent_decode("%zz%é%4", true).as_deref(), Some("%zz%é%4"));
        assert_eq!(percent_decode("%ff", true), None);
    }

    #[test]
    fn unknown_empty_and_repeated_parameters_are_refused_lists_add_up() {
        let q = parse_query(Some("fields=pid&fields=name&user=root"), Q).expect("ok");
        assert_eq!(q["fields"], ["pid", "name"]);
        assert_eq!(q["user"], ["root"]);
        for (raw, code) in [
            ("nope=1", "unknown_parameter"),
            ("user=", "invalid_parameter"),
            ("user", "invalid_parameter"),
            ("fields=", "invalid_parameter"),
            ("user=a&user=b", "invalid_parameter"),
        ] {
            let e = parse_query(Some(raw), Q).expect_err(raw);
            assert_eq!(e.code(), code, "{raw}");
        }
        let e = parse_query(Some("x=1"), &[]).expect_err("no params");
        assert!(e.to_string().contains("no parameters"), "{e}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        pid: i32,
        #[serde(default, deserialize_with = "present")]
        signal: Option<String>,
    }

    #[test]
    fn body_errors_name_the_member_and_unknown_members_have_their_code() {
        let e = decode_body::<B>(br#"{"pid":1,"singal":"TERM"}"#).expect_err("typo");
        assert_eq!(e.code(), "unknown_field");
        assert!(e.to_string().contains("singal"), "{e}");
        let e = decode_body::<B>(br#"{"pid":1,"signal":null}"#).expect_err("null");
        assert_eq!(e.code(), "invalid_field");
        let e = decode_body::<B>(br#"{"signal":"TERM"}"#).expect_err("missing");
        assert!(e.to_string().contains("pid"), "{e}");
        assert_eq!(
            decode_body::<B>(b"[1]").expect_err("array").code(),
            "invalid_json"
        );
        assert_eq!(
            decode_body::<B>(b"").expect_err("empty").code(),
            "invalid_json"
        );
        assert!(decode_body::<B>(br#"{"pid":1}"#)
            .expect("ok")
            .signal
            .is_none());
    }

    #[test]
    fn a_member_given_twice_at_any_depth_is_refused_naming_it() {
        for (body, name) in [
            (r#"{"pid": 4242, "pid": 1}"#, "pid"),
            (
                r#"{"pid": 1, "signal": "TERM", "signal": "KILL"}"#,
                "signal",
            ),
            (r#"{"pid": 1, "x": {"a": 1, "b": {"c": 1, "c": 1}}}"#, "c"),
            (r#"{"pid": 1, "x": [{"a": 1}, {"a": 1, "a": 2}]}"#, "a"),
            (r#"{"pid": 1, "p\u0069d": 2}"#, "pid"),
        ] {
            let e = parse_body(body.as_bytes()).expect_err(body);
            assert_eq!(e.code(), "duplicate_field", "{body}: {e}");
            assert!(e.to_string().contains(&format!("{name:?}")), "{body}: {e}");
            let e = decode_body::<B>(body.as_bytes()).expect_err(body);
            assert_eq!(e.code(), "duplicate_field", "{body}: {e}");
        }
        // The same name in two different objects is no repetition.
        let v = parse_body(br#"{"pid": 1, "x": [{"a": 1}, {"a": 2}], "y": {"pid": 3}}"#)
            .expect("distinct objects");
        assert_eq!(v["x"][1]["a"], 2);
        assert_eq!(v["y"]["pid"], 3);
        // What serde_json's own Value gave, the strict one gives.
        let text =
            r#"{"a": [1, -2, 3.5, 18446744073709551615, "s\n", true, null, {}], "b": {"c": []}}"#;
        let plain: Value = serde_json::from_str(text).expect("plain");
        assert_eq!(parse_body(text.as_bytes()).expect("strict"), plain);
        for (bad, code) in [
            (&b"{\"pid\": 1} x"[..], "invalid_json"),
            (b"{\"pid\": 1", "invalid_json"),
            (b"[1]", "invalid_json"),
            (b"  ", "invalid_json"),
        ] {
            let e = parse_body(bad).expect_err("bad");
            assert_eq!(e.code(), code, "{}: {e}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
        let deep = format!(r#"{{"a": {deep}}}"#);
        assert_eq!(
            parse_body(deep.as_bytes()).expect_err("deep").code(),
            "invalid_json"
        );
    }
}
