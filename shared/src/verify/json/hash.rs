//! The content hash of a read document: every leaf as its length-prefixed path, type and length-prefixed
//! value, sorted, so that two bodies hash alike only if they hold the same values at the same paths.

use super::{segment_len, Document, Pair};
use crate::verify::{hex_digest, prefix_key};

impl<'a> Document<'a> {
    /// SHA-256 (hex) of the body's content without the top-level keys in `skip`: every leaf as its
    /// length-prefixed path, type and length-prefixed value, sorted. Two bodies have the same hash only if
    /// they hold the same values at the same paths, whatever their key order or whitespace.
    pub fn content_hash(&self, skip: &[&str]) -> String {
        hex_digest(self.content_hash_input(skip).as_bytes())
    }

    /// The text [`Document::content_hash`] hashes: one line per leaf, sorted.
    pub fn content_hash_input(&self, skip: &[&str]) -> String {
        // No leaf's structural path is a prefix of another's (a path never leads both to a leaf and through
        // it), so ordering by path orders the whole `path=value` lines. Paths are ordered by their top-level
        // step first (the members, few to sort), then within each member (its leaves are one run) by their
        // first 16 bytes after that step as a number, whole paths compared only where those are equal: the
        // rest rarely shares 16 bytes, where whole paths do (every leaf of `params` starts `.6:params.`).
        let mut members: Vec<(&str, &[Pair<'a>])> = self
            .members
            .iter()
            .filter(|m| !skip.contains(&m.key.as_ref()) && m.leaves.0 < m.leaves.1)
            .map(|m| {
                let first = self.structural(&self.pairs[m.leaves.0]);
                (&first[..segment_len(first)], &self.pairs[m.leaves.0..m.leaves.1])
            })
            .collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut input = String::with_capacity(self.paths.len() + self.text.len());
        let mut order: Vec<(u128, usize)> = Vec::new();
        for (step, leaves) in members {
            if let [pair] = leaves {
                self.push_line(&mut input, pair);
                continue;
            }
            order.clear();
            let rest = |p: &Pair<'_>| prefix_key(&self.structural(p).as_bytes()[step.len()..]);
            order.extend(leaves.iter().enumerate().map(|(i, p)| (rest(p), i)));
            order.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| self.structural(&leaves[a.1]).cmp(self.structural(&leaves[b.1])))
            });
            for &(_, i) in &order {
                self.push_line(&mut input, &leaves[i]);
            }
        }
        input
    }

    /// One line of the content hash's text: `<structural path>=<tag><length>:<value>` and a newline.
    fn push_line(&self, input: &mut String, pair: &Pair<'_>) {
        input.push_str(self.structural(pair));
        input.push('=');
        input.push(pair.kind.tag());
        push_decimal(input, pair.value.len());
        input.push(':');
        input.push_str(&pair.value);
        input.push('\n');
    }
}

/// The decimal digits of a length or index, without going through `fmt`.
pub(super) fn push_decimal(out: &mut String, n: usize) {
    out.push_str(itoa::Buffer::new().format(n));
}
