//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr does the YAML work (syntax, duplicate keys, alias and nesting budgets);
//! this module only captures the result as a small tree so that the profile reader can
//! walk it, report *every* problem with its file, line and column, and merge `extends:`
//! bases without losing where each value was written.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// Where a node was written: which source file (index into the loader's file table), and
/// its 1-based line and column. The file index is the loader's, so a cached tree
/// (`cache.rs`) leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pos {
    #[serde(skip)]
    pub file: usize,
    pub line: u32,
    pub col: u32,
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their own position so an unknown key is reported where it is written.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What a reader would call this kind of value in an error message.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses `text` into a node tree; positions are tagged with `file`.
pub fn parse(text: &str, file: usize) -> Result<Node, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 24,
            max_nodes: 50_000,
            max_aliases: 1_000,
        },
    };
    let spanned: Spanned<RawNode> = serde_saphyr::from_str_with_options(text, options)?;
    Ok(spanned_to_node(spanned, file))
}

/// The tree as serde hands it over; converted to [`Node`] once the file index is known.
enum RawNode {
    Scalar(Value),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

fn spanned_to_node(raw: Spanned<RawNode>, file: usize) -> Node {
    let pos = Pos {
        file,
        line: u32::try_from(raw.referenced.line()).unwrap_or(u32::MAX),
        col: u32::try_from(raw.referenced.column()).unwrap_or(u32::MAX),
    };
    let value = match raw.value {
        RawNode::Scalar(v) => v,
        RawNode::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|i| spanned_to_node(i, file))
                .collect(),
        ),
        RawNode::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (spanned_to_node(k, file), spanned_to_node(v, file)))
                .collect(),
        ),
    };
    Node { pos, value }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Null))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Int(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Int(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Int(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawNode, E> {
        i128::try_from(v)
            .map(|v| RawNode::Scalar(Value::Int(v)))
            .map_err(|_| E::custom("integer is too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawNode>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}
