//! The flattening half of the reader: one linear pass with an explicit stack (no recursion that input can
//! drive) that yields the document's members, its leaves and their paths, checking the limits as it goes.

use std::borrow::Cow;

use super::hash::push_decimal;
use super::lex::Reader;
use super::{Document, Kind, Member, Pair, ReadError, MAX_DEPTH, MAX_FLATTENED_RATIO, MAX_LEAVES};
use crate::verify::prefix_key;

enum Container {
    Object,
    Array,
}

/// One open object or array.
struct Frame {
    container: Container,
    /// The canonical path's length, and the structural path buffer's, when this container was opened.
    path_len: usize,
    structural_len: usize,
    /// Members or items read so far.
    count: usize,
    /// Where this object's keys start on the key stack (checked for repeats when it closes).
    keys_start: usize,
}

/// Read `text` as one JSON object.
pub fn read(text: &str) -> Result<Document<'_>, ReadError> {
    Reader { text, bytes: text.as_bytes(), pos: 0 }.document(false)
}

/// Read `text` as one JSON object whose canonical string will be signed or verified: each leaf's canonical
/// path is kept as it is read, not written again from its structural path.
pub fn read_signed(text: &str) -> Result<Document<'_>, ReadError> {
    Reader { text, bytes: text.as_bytes(), pos: 0 }.document(true)
}

/// The running state of one read: the current path and the document being built.
struct Builder<'a> {
    doc: Document<'a>,
    structural: String,
    /// The length of the current path in its canonical form, and (read for a signature) that path.
    path_len: usize,
    path: Option<String>,
    /// Bytes of `path=value` text so far, and the most allowed.
    flattened: usize,
    flattened_limit: usize,
    /// The top-level member being read: its key, where it started and its first leaf.
    top: Cow<'a, str>,
    top_start: usize,
    top_leaves: usize,
}

impl<'a> Builder<'a> {
    fn leaf(&mut self, value: Cow<'a, str>, kind: Kind, start: usize) -> Result<(), ReadError> {
        self.flattened += self.path_len + 1 + value.len();
        let paths = &mut self.doc.paths;
        let canonical_start = paths.len();
        if let Some(path) = &self.path {
            paths.push_str(path);
        }
        let path_start = paths.len();
        paths.push_str(&self.structural);
        let offset = |at: usize| u32::try_from(at).map_err(|_| ReadError::TooComplex);
        let pair = Pair {
            path: (offset(path_start)?, offset(paths.len())?),
            canonical_start: offset(canonical_start)?,
            value,
            kind,
            start,
        };
        self.doc.pairs.push(pair);
        if self.doc.pairs.len() > MAX_LEAVES || self.flattened > self.flattened_limit {
            return Err(ReadError::TooComplex);
        }
        Ok(())
    }

    /// Cut the kept canonical path back to `path_len`.
    fn truncate_path(&mut self) {
        if let Some(path) = &mut self.path {
            path.truncate(self.path_len);
        }
    }

    /// The top-level member whose value ended at `end`.
    fn member(&mut self, text: &'a str, value_start: usize, end: usize) {
        let key = std::mem::take(&mut self.top);
        let leaves = (self.top_leaves, self.doc.pairs.len());
        self.doc.members.push(Member { key, span: (self.top_start, end), raw: &text[value_start..end], leaves });
    }
}
/// One read in progress: the reader, the document being built and the open containers.
struct Flattener<'a> {
    r: Reader<'a>,
    b: Builder<'a>,
    stack: Vec<Frame>,
    /// The keys of every open object, back to back (each frame knows where its own start).
    keys: Vec<Cow<'a, str>>,
    /// Where the top-level value being read started.
    top_value_start: usize,
}

/// What the next token of an open container is.
enum Step {
    /// The container closed; `true` if it was the document itself.
    Closed(bool),
    /// A member or item follows.
    Next,
}

impl<'a> Reader<'a> {
    fn document(self, signed: bool) -> Result<Document<'a>, ReadError> {
        let text = self.text;
        // Typical callbacks have one leaf per 20-30 bytes; reserving once avoids regrowing.
        let leaves_guess = (text.len() / 24).min(MAX_LEAVES);
        let b = Builder {
            doc: Document {
                text,
                members: Vec::with_capacity(12),
                pairs: Vec::with_capacity(leaves_guess),
                // Each leaf's structural path, and its canonical path too when read for a signature.
                paths: String::with_capacity(leaves_guess * if signed { 48 } else { 32 }),
            },
            structural: String::with_capacity(96),
            path_len: 0,
            path: signed.then(|| String::with_capacity(64)),
            flattened: 0,
            flattened_limit: (MAX_FLATTENED_RATIO * text.len()).max(65_536),
            top: Cow::Borrowed(""),
            top_start: 0,
            top_leaves: 0,
        };
        let mut f =
            Flattener { r: self, b, stack: Vec::with_capacity(8), keys: Vec::with_capacity(32), top_value_start: 0 };
        f.r.skip_ws();
        if f.r.peek() != Some(b'{') {
            return f.r.fail("expected a JSON object");
        }
        f.r.pos += 1;
        f.stack.push(Frame { container: Container::Object, path_len: 0, structural_len: 0, count: 0, keys_start: 0 });
        f.run()?;
        f.r.skip_ws();
        if f.r.pos != f.r.bytes.len() {
            return f.r.fail("trailing characters after the object");
        }
        Ok(f.b.doc)
    }
}

impl<'a> Flattener<'a> {
    /// Every member and item of every open container, until the document closes.
    fn run(&mut self) -> Result<(), ReadError> {
        loop {
            match self.close_or_separate()? {
                Step::Closed(true) => return Ok(()),
                Step::Closed(false) => continue,
                Step::Next => {}
            }
            let parent_path = self.b.path_len;
            let parent_structural = self.b.structural.len();
            self.step_in()?;
            self.r.skip_ws();
            let value_start = self.r.pos;
            if self.stack.len() == 1 {
                self.top_value_start = value_start;
            }
            if self.open_or_leaf(value_start, parent_path, parent_structural)? {
                continue;
            }
            if self.stack.len() == 1 {
                self.b.member(self.r.text, value_start, self.r.pos);
            }
            self.b.path_len = parent_path;
            self.b.truncate_path();
            self.b.structural.truncate(parent_structural);
        }
    }

    /// At the top of the innermost open container: its end (checking its keys, an empty one being a leaf),
    /// or the `,` before its next member or item.
    #[inline(always)]
    fn close_or_separate(&mut self) -> Result<Step, ReadError> {
        let frame = self.stack.last().expect("a frame is open");
        self.r.skip_ws();
        let closing = match frame.container {
            Container::Object => b'}',
            Container::Array => b']',
        };
        if self.r.peek() == Some(closing) {
            self.r.pos += 1;
            let frame = self.stack.pop().expect("a frame is open");
            check_unique(&self.keys[frame.keys_start..], self.r.pos)?;
            self.keys.truncate(frame.keys_start);
            if self.stack.is_empty() {
                return Ok(Step::Closed(true));
            }
            if frame.count == 0 {
                let (value, kind) = match frame.container {
                    Container::Object => ("{}", Kind::EmptyObject),
                    Container::Array => ("[]", Kind::EmptyArray),
                };
                self.b.leaf(Cow::Borrowed(value), kind, self.r.pos - 2)?;
            }
            self.b.path_len = frame.path_len;
            self.b.truncate_path();
            self.b.structural.truncate(frame.structural_len);
            if self.stack.len() == 1 {
                self.b.member(self.r.text, self.top_value_start, self.r.pos);
            }
            return Ok(Step::Closed(false));
        }
        if frame.count > 0 {
            if self.r.peek() != Some(b',') {
                return self.r.fail(if closing == b'}' { "expected `,` or `}`" } else { "expected `,` or `]`" });
            }
            self.r.pos += 1;
            self.r.skip_ws();
        }
        Ok(Step::Next)
    }

    /// The path one step in: an object's next key (read, and its `:`), or an array's next index.
    #[inline(always)]
    fn step_in(&mut self) -> Result<(), ReadError> {
        let b = &mut self.b;
        let depth = self.stack.len();
        let frame = self.stack.last_mut().expect("a frame is open");
        match frame.container {
            Container::Object => {
                if self.r.peek() != Some(b'"') {
                    return self.r.fail("expected a key");
                }
                let key_start = self.r.pos;
                let key = self.r.string()?;
                self.r.expect(b':', "expected `:`")?;
                if depth == 1 {
                    b.top = key.clone();
                    b.top_start = key_start;
                    b.top_leaves = b.doc.pairs.len();
                } else {
                    b.path_len += 1;
                    if let Some(path) = &mut b.path {
                        path.push('.');
                    }
                }
                b.path_len += key.len();
                if let Some(path) = &mut b.path {
                    path.push_str(&key);
                }
                b.structural.push('.');
                push_decimal(&mut b.structural, key.len());
                b.structural.push(':');
                b.structural.push_str(&key);
                self.keys.push(key);
                frame.count += 1;
            }
            Container::Array => {
                let before = b.structural.len();
                b.structural.push('[');
                push_decimal(&mut b.structural, frame.count);
                b.structural.push(']');
                b.path_len += b.structural.len() - before;
                if let Some(path) = &mut b.path {
                    path.push_str(&b.structural[before..]);
                }
                frame.count += 1;
            }
        }
        Ok(())
    }

    /// The value at `value_start`: an object or array opens (`true`: read its members next), a scalar is a
    /// leaf (`false`).
    #[inline(always)]
    fn open_or_leaf(
        &mut self,
        value_start: usize,
        parent_path: usize,
        parent_structural: usize,
    ) -> Result<bool, ReadError> {
        let (r, b) = (&mut self.r, &mut self.b);
        match r.peek() {
            Some(open @ (b'{' | b'[')) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ReadError::TooDeep);
                }
                r.pos += 1;
                self.stack.push(Frame {
                    container: if open == b'{' { Container::Object } else { Container::Array },
                    path_len: parent_path,
                    structural_len: parent_structural,
                    count: 0,
                    keys_start: self.keys.len(),
                });
                return Ok(true);
            }
            Some(b'"') => {
                let value = r.string()?;
                b.leaf(value, Kind::String, value_start)?;
            }
            Some(b't') => b.leaf(Cow::Borrowed(r.literal("true")?), Kind::Bool, value_start)?,
            Some(b'f') => b.leaf(Cow::Borrowed(r.literal("false")?), Kind::Bool, value_start)?,
            Some(b'n') => b.leaf(Cow::Borrowed(r.literal("null")?), Kind::Null, value_start)?,
            Some(b'-' | b'0'..=b'9') => {
                let number = r.number()?;
                b.leaf(Cow::Borrowed(number), Kind::Number, value_start)?;
            }
            _ => return r.fail("expected a value"),
        }
        Ok(false)
    }
}

/// Refuse an object whose keys repeat.
fn check_unique(keys: &[Cow<'_, str>], at: usize) -> Result<(), ReadError> {
    let repeated = if keys.len() <= 16 {
        keys.iter().enumerate().any(|(i, key)| keys[..i].contains(key))
    } else {
        // Keyed by their first bytes, so that whole keys are compared only where those are equal; equal keys
        // still end up side by side.
        let mut keyed: Vec<(u128, &str)> = keys.iter().map(|k| (prefix_key(k.as_bytes()), k.as_ref())).collect();
        keyed.sort_unstable();
        keyed.windows(2).any(|w| w[0] == w[1])
    };
    if repeated {
        return Err(ReadError::Invalid { what: "duplicate key", at });
    }
    Ok(())
}
