//! The lexical half of the reader: whitespace, literals, numbers checked against JSON's grammar, strings
//! unescaped once (no raw control characters, no lone surrogates).

use std::borrow::Cow;

use super::ReadError;

pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}
impl<'a> Reader<'a> {
    pub(super) fn fail<T>(&self, what: &'static str) -> Result<T, ReadError> {
        Err(ReadError::Invalid { what, at: self.pos })
    }

    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ReadError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }
    pub(super) fn literal(&mut self, word: &'static str) -> Result<&'static str, ReadError> {
        if !self.bytes[self.pos..].starts_with(word.as_bytes()) {
            return self.fail("expected a value");
        }
        self.pos += word.len();
        Ok(word)
    }

    /// A number's text, checked against JSON's grammar.
    pub(super) fn number(&mut self) -> Result<&'a str, ReadError> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let from = r.pos;
            while let Some(b'0'..=b'9') = r.peek() {
                r.pos += 1;
            }
            r.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        Ok(&self.text[start..self.pos])
    }

    /// Move past the plain run of a string (up to a quote, backslash or control character).
    pub(super) fn plain_run(&mut self) {
        // Eight bytes at a time while none of them is a quote, a backslash or a control character.
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let x = word(chunk);
            if any_byte_is(x, b'"') || any_byte_is(x, b'\\') || any_byte_below(x, 0x20) {
                break;
            }
            self.pos += 8;
        }
        let rest = &self.bytes[self.pos..];
        self.pos += rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(rest.len());
    }

    /// A string's content (the reader is on its opening quote), unescaped; borrowed when it has no escape.
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>, ReadError> {
        self.pos += 1;
        let start = self.pos;
        self.plain_run();
        match self.peek() {
            None => return self.fail("unterminated string"),
            Some(b'"') => {
                let s = &self.text[start..self.pos];
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(_) => return self.fail("control character in a string"),
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return self.fail("invalid escape"),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                Some(0..=0x1f) => return self.fail("control character in a string"),
                Some(_) => {
                    // Copy the run up to the next quote or backslash (UTF-8 boundaries are kept).
                    let from = self.pos;
                    self.plain_run();
                    out.push_str(&self.text[from..self.pos]);
                }
            }
        }
    }

    pub(super) fn hex4(&mut self) -> Result<u16, ReadError> {
        let Some(digits) = self.text.get(self.pos..self.pos + 4) else { return self.fail("invalid \\u escape") };
        let Ok(value) = u16::from_str_radix(digits, 16) else { return self.fail("invalid \\u escape") };
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail("invalid \\u escape");
        }
        self.pos += 4;
        Ok(value)
    }

    /// The character of a `\uXXXX` escape (the reader is past `\u`); a surrogate must come as a pair.
    pub(super) fn unicode_escape(&mut self) -> Result<char, ReadError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return self.fail("lone surrogate escape");
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return self.fail("lone surrogate escape");
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.fail("lone surrogate escape"),
            other => u32::from(other),
        };
        char::from_u32(code).map_or_else(|| self.fail("invalid \\u escape"), Ok)
    }
}

/// Eight bytes as one word, to search them at once.
pub(crate) fn word(chunk: &[u8]) -> u64 {
    u64::from_ne_bytes(chunk.try_into().expect("eight bytes"))
}

/// Whether any of the eight bytes of `word` is below `bound` (at most 0x80; exact, with no false positive).
pub(super) fn any_byte_below(word: u64, bound: u8) -> bool {
    word.wrapping_sub(u64::from_ne_bytes([bound; 8])) & !word & u64::from_ne_bytes([0x80; 8]) != 0
}

/// Whether any of the eight bytes of `word` is `byte`.
pub(crate) fn any_byte_is(word: u64, byte: u8) -> bool {
    any_byte_below(word ^ u64::from_ne_bytes([byte; 8]), 1)
}
