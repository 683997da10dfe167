//! Reading a JSON event with paths: every value comes with where it is
//! (`detail.findings[0].Resources`), so every error can say so; and the
//! checks both finding formats share.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ParseError;

/// The fields of a finding that hubtriage repeats (in decisions, notes,
/// tickets and logs) are held to AWS's own shapes: each `(path, value, max)`
/// has at most `max` characters and no control characters. Paths are below
/// `node`; the error names the first that is not so, and shows its start.
pub(super) fn check_plain(
    node: &Node<'_>,
    fields: &[(&str, Option<&String>, usize)],
) -> Result<(), ParseError> {
    for (path, value, max) in fields {
        if let Some(value) = value {
            plain(&node.path_of(path), value, *max)?;
        }
    }
    Ok(())
}

/// `value` has at most `max` characters and no control characters; the error
/// shows its start, escaped.
fn plain(path: &str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.chars().count() <= max && !value.chars().any(char::is_control) {
        return Ok(());
    }
    Err(ParseError::WrongValue {
        path: path.to_string(),
        expected: format!("at most {max} characters without control characters"),
        found: value.chars().take(40).collect(),
    })
}

/// The finding's region at `key` below `node`, else the event's `region`.
pub(super) fn region_of(
    node: &Node<'_>,
    key: &str,
    event_region: Option<&str>,
) -> Result<String, ParseError> {
    match (node.opt_field(key), event_region) {
        (Some(r), _) => Ok(r.string()?.to_string()),
        (None, Some(r)) => Ok(r.to_string()),
        (None, None) => Err(node.missing(key)),
    }
}

/// The parameters a control finding carries (Security Hub's custom control
/// parameters), at `list`: an array of objects with a name (`name_key`) and
/// a list of values (`values_key`) or, OCSF, one value (`value_key`). Values
/// are text (numbers as written). Names and values are held to plain text
/// of AWS's sizes; a name given twice keeps its first values.
pub(super) fn parameters(
    list: Option<Node<'_>>,
    name_key: &str,
    values_key: &str,
    value_key: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, ParseError> {
    let mut out = BTreeMap::new();
    let Some(list) = list else {
        return Ok(out);
    };
    for item in list.array()?.into_iter().take(MAX_PARAMETERS) {
        item.object()?;
        let name = item.field(name_key)?.string()?.to_string();
        plain(&item.path_of(name_key), &name, 256)?;
        let values = match (
            item.opt_field(values_key),
            value_key.and_then(|k| item.opt_field(k)),
        ) {
            (Some(list), _) => list.array()?,
            (None, Some(one)) => vec![one],
            (None, None) => Vec::new(),
        };
        let mut texts = Vec::new();
        for v in values.into_iter().take(MAX_PARAMETERS) {
            let text = v.scalar()?;
            plain(&v.path, &text, 256)?;
            texts.push(text);
        }
        out.entry(name).or_insert(texts);
    }
    Ok(out)
}

/// The most parameters (and values of one parameter) read from a finding.
const MAX_PARAMETERS: usize = 50;

pub(super) fn opt_string(node: Option<Node<'_>>) -> Result<Option<String>, ParseError> {
    node.map(|n| n.string().map(str::to_string)).transpose()
}

/// A JSON value together with its path, so every error can say where it is.
pub(super) struct Node<'a> {
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    pub(super) fn root(value: &'a Value) -> Self {
        Node {
            path: String::new(),
            value,
        }
    }

    pub(super) fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Node { path, value }
    }

    /// The path of `key` below this node (as errors name it).
    pub(super) fn path_of(&self, key: &str) -> String {
        self.child(key, &Value::Null).path
    }

    pub(super) fn missing(&self, key: &str) -> ParseError {
        ParseError::Missing {
            path: self.child(key, &Value::Null).path,
        }
    }

    fn wrong_type(&self, expected: &'static str) -> ParseError {
        ParseError::WrongType {
            path: if self.path.is_empty() {
                "(event)".into()
            } else {
                self.path.clone()
            },
            expected,
            found: kind_of(self.value),
        }
    }

    pub(super) fn object(&self) -> Result<&'a serde_json::Map<String, Value>, ParseError> {
        self.value
            .as_object()
            .ok_or_else(|| self.wrong_type("an object"))
    }

    /// A field that must be present and not null.
    pub(super) fn field(&self, key: &str) -> Result<Node<'a>, ParseError> {
        self.opt_field(key).ok_or_else(|| self.missing(key))
    }

    /// A field that may be absent (or null). Not an object → treated as absent here;
    /// required fields go through [`Node::field`], which reports the type.
    pub(super) fn opt_field(&self, key: &str) -> Option<Node<'a>> {
        match self.value.as_object()?.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(self.child(key, value)),
        }
    }

    /// An integer (OCSF's enum ids).
    pub(super) fn integer(&self) -> Result<i64, ParseError> {
        self.value
            .as_i64()
            .ok_or_else(|| self.wrong_type("an integer"))
    }

    /// A string, or a number or boolean as written.
    pub(super) fn scalar(&self) -> Result<String, ParseError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.wrong_type("a string or a number")),
        }
    }

    pub(super) fn string(&self) -> Result<&'a str, ParseError> {
        self.value
            .as_str()
            .ok_or_else(|| self.wrong_type("a string"))
    }

    pub(super) fn array(&self) -> Result<Vec<Node<'a>>, ParseError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.wrong_type("an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                path: format!("{}[{i}]", self.path),
                value,
            })
            .collect())
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
