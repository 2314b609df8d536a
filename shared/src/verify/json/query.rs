//! Reading the fields a provider's model names from a read document: values, objects and arrays.

use super::{segment, segment_len, Document, Kind, Pair, Segment};

impl<'a> Document<'a> {
    /// The whole body as a value, to read fields from.
    pub fn root(&self) -> Value<'_, 'a> {
        Value::Object(Node { doc: self, leaves: &self.pairs, depth: 0 })
    }
    /// A top-level member's value, to read fields from.
    pub fn field(&self, name: &str) -> Value<'_, 'a> {
        let Some(member) = self.find(name) else { return Value::Absent };
        let leaves = &self.pairs[member.leaves.0..member.leaves.1];
        let depth = leaves.first().map_or(0, |leaf| segment_len(self.structural(leaf)));
        Node { doc: self, leaves, depth }.value()
    }
    /// A top-level scalar's text as the provider means it (`None` for null, objects and arrays).
    pub fn member_text(&self, name: &str) -> Option<&str> {
        self.field(name).text()
    }
}

/// A value in a read document, for reading the fields a provider's model names.
#[derive(Debug, Clone, Copy)]
pub enum Value<'d, 'a> {
    Absent,
    Null,
    /// A string's content, a number's text as sent, `true` or `false`.
    Text(&'d str),
    Object(Node<'d, 'a>),
    Array(Node<'d, 'a>),
}

impl<'d> Value<'d, '_> {
    /// The text of a scalar; `None` for absent, null, objects and arrays.
    pub fn text(self) -> Option<&'d str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn is_present(&self) -> bool {
        !matches!(self, Value::Absent)
    }
}

impl<'d, 'a> Value<'d, 'a> {
    pub fn object(self) -> Option<Node<'d, 'a>> {
        match self {
            Value::Object(node) => Some(node),
            _ => None,
        }
    }

    pub fn array(self) -> Option<Node<'d, 'a>> {
        match self {
            Value::Array(node) => Some(node),
            _ => None,
        }
    }
}

/// An object or array of a read document: its run of leaves, and the length of the structural path that
/// leads to it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'d, 'a> {
    doc: &'d Document<'a>,
    leaves: &'d [Pair<'a>],
    depth: usize,
}

impl<'d, 'a> Node<'d, 'a> {
    /// The value this node's leaves make up (`leaves` is one child's run).
    fn value(self) -> Value<'d, 'a> {
        let Some(first) = self.leaves.first() else { return Value::Absent };
        let structural = self.doc.structural(first);
        if structural.len() == self.depth {
            return match first.kind {
                Kind::Null => Value::Null,
                Kind::EmptyObject => Value::Object(self),
                Kind::EmptyArray => Value::Array(self),
                Kind::String | Kind::Number | Kind::Bool => Value::Text(&first.value),
            };
        }
        if structural.as_bytes()[self.depth] == b'.' {
            Value::Object(self)
        } else {
            Value::Array(self)
        }
    }

    /// The members or items: each one's path step (`.3:key` or `[i]`) and value, in document order.
    pub fn children(self) -> impl Iterator<Item = (Segment<'d>, Value<'d, 'a>)> {
        let Node { doc, leaves, depth } = self;
        let mut at = 0;
        std::iter::from_fn(move || loop {
            let first = leaves.get(at)?;
            let structural = doc.structural(first);
            if structural.len() == depth {
                at += 1; // an empty container's own leaf
                continue;
            }
            let step = &structural[depth..depth + segment_len(&structural[depth..])];
            let child = self.child(at, step);
            at += child.leaves.len();
            return Some((segment(step), child.value()));
        })
    }

    /// The values of an object's members named in `names` (`Absent` where there is none). One pass over
    /// the object's leaves: only a named member's leaves are grouped into its value.
    pub fn fields<const N: usize>(self, names: [&str; N]) -> [Value<'d, 'a>; N] {
        let Node { doc, leaves, depth } = self;
        let mut found = [Value::Absent; N];
        // Keys whose length no name has are passed over without comparing text.
        let lengths = names.iter().fold(0u128, |mask, name| mask | 1 << name.len().min(127));
        let mut at = 0;
        while let Some(leaf) = leaves.get(at) {
            at += 1;
            let structural = doc.structural(leaf);
            if structural.len() == depth || structural.as_bytes()[depth] != b'.' {
                continue; // an empty container's own leaf, or an array item
            }
            // `.<len>:<key>`: the length's digits are read once, and give the key without a second parse.
            let bytes = &structural.as_bytes()[depth + 1..];
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            let len = bytes[..digits].iter().fold(0usize, |n, &b| n * 10 + usize::from(b - b'0'));
            if lengths & 1 << len.min(127) == 0 {
                continue;
            }
            let key_start = depth + 2 + digits;
            let key = &structural[key_start..key_start + len];
            let Some(i) = names.iter().position(|name| *name == key) else { continue };
            let child = self.child(at - 1, &structural[depth..key_start + len]);
            at += child.leaves.len() - 1;
            found[i] = child.value();
        }
        found
    }

    /// The child whose first leaf is `leaves[at]` and whose path step is `step`: that leaf and the ones after
    /// it on the same step.
    fn child(self, at: usize, step: &str) -> Node<'d, 'a> {
        let Node { doc, leaves, depth } = self;
        let run = leaves[at..].iter().take_while(|p| doc.structural(p)[depth..].starts_with(step)).count();
        Node { doc, leaves: &leaves[at..at + run], depth: depth + step.len() }
    }

    /// An array's items, in order.
    pub fn items(self) -> impl Iterator<Item = Value<'d, 'a>> {
        self.children().map(|(_, value)| value)
    }
}
