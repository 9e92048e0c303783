//! A JSON scanner for the bytes of result pages, the one place a sync spends most of its CPU:
//! tokens are read straight from the text, strings are searched for their end eight bytes at a
//! time, and nothing is built that the caller does not ask for.
//!
//! It accepts exactly what `serde_json` accepts (RFC 8259; no trailing commas, no control
//! characters in strings, at most 127 levels of nesting, as it reads a `Value`), so a page this scanner refuses is one
//! `serde_json` would refuse too. Strings with escapes are rare in Graph's pages and are decoded
//! by `serde_json` itself, so an escape means here what it means everywhere else.

use std::borrow::Cow;
use std::fmt;

/// Levels of nesting allowed, as `serde_json` allows a `Value`.
const MAX_DEPTH: u32 = 127;

/// Where and why a text is not JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Byte offset of the problem.
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

pub type Result<T> = std::result::Result<T, Malformed>;

/// A string token.
#[derive(Clone, Copy, Debug)]
pub struct Str<'a> {
    /// The token as written, quotes included.
    pub quoted: &'a str,
    /// Whether it holds an escape; if not, its text between the quotes is its value, and holds
    /// nothing JSON must escape.
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The text between the quotes (the value itself when not [`Str::escaped`]).
    #[inline]
    pub fn raw(&self) -> &'a str {
        &self.quoted[1..self.quoted.len() - 1]
    }

    /// The decoded value.
    #[inline]
    pub fn value(&self) -> Result<Cow<'a, str>> {
        if !self.escaped {
            return Ok(Cow::Borrowed(self.raw()));
        }
        serde_json::from_str::<String>(self.quoted)
            .map(Cow::Owned)
            .map_err(|_| Malformed { at: 0, what: "an invalid escape in a string" })
    }
}

/// A value's kind, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Literal,
}

pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
    /// Whether a `\\uXXXX` escape of a UTF-16 surrogate was read (it may be an unpaired one).
    surrogates: bool,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each zero byte of `x` (exact up to the first zero byte, which is all that is read).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The bytes of `w` that end a plain run of string text: a quote, a backslash or a control character.
#[inline(always)]
fn specials(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// The eight bytes at `i` as one little-endian word, if there are eight.
#[inline(always)]
pub fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let w: &[u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(*w))
}

/// Equal byte strings, compared a word at a time (keys are short; a `memcmp` call costs more).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while let (Some(x), Some(y)) = (word_at(a, i), word_at(b, i)) {
        if x != y {
            return false;
        }
        i += 8;
    }
    a[i..].iter().zip(&b[i..]).all(|(x, y)| x == y)
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0, depth: 0, surrogates: false }
    }

    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn fail<T>(&self, what: &'static str) -> Result<T> {
        Err(Malformed { at: self.pos, what })
    }

    /// The next byte that is not whitespace (the position moves to it).
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    /// The kind of the value that comes next.
    #[inline]
    pub fn kind(&mut self) -> Result<Kind> {
        match self.peek() {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f' | b'n') => Ok(Kind::Literal),
            Some(_) => self.fail("a value expected"),
            None => self.fail("the text ends where a value was expected"),
        }
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("characters after the value"),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads `{`; then [`Scanner::next_key`] until it answers `None`.
    pub fn begin_object(&mut self) -> Result<()> {
        if self.peek() != Some(b'{') {
            return self.fail("an object expected");
        }
        self.enter()
    }

    /// Reads `[`; then [`Scanner::next_element`] until it answers `false`.
    pub fn begin_array(&mut self) -> Result<()> {
        if self.peek() != Some(b'[') {
            return self.fail("an array expected");
        }
        self.enter()
    }

    /// The next key of an object and its colon, or `None` at its end; `first` is true before
    /// the first key.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> Result<Option<Str<'a>>> {
        match self.peek() {
            Some(b'}') => return self.close(),
            Some(b',') if !first => self.pos += 1,
            Some(b'"') if first => {}
            _ => return self.fail(if first { "a key expected" } else { "a comma or } expected" }),
        }
        self.key_and_colon().map(Some)
    }

    /// A key after its comma (or the object's brace) and the colon after it.
    fn key_and_colon(&mut self) -> Result<Str<'a>> {
        if self.peek() != Some(b'"') {
            return self.fail("a key expected after a comma");
        }
        let key = self.string()?;
        self.colon()?;
        Ok(key)
    }

    fn colon(&mut self) -> Result<()> {
        if self.peek() != Some(b':') {
            return self.fail("a colon expected");
        }
        self.pos += 1;
        Ok(())
    }

    /// [`Scanner::next_key`] when the key is likely `hint` (a plain key: no escape, no quote):
    /// checked with one comparison where it is, instead of searched for its end. The flag says
    /// whether it was `hint`.
    #[inline]
    pub fn next_key_hinted(&mut self, first: bool, hint: &str) -> Result<Option<(Str<'a>, bool)>> {
        let b = self.bytes();
        let at = match self.peek() {
            Some(b',') if !first => {
                self.pos += 1;
                self.peek();
                self.pos
            }
            Some(b'"') if first => self.pos,
            _ => return Ok(self.next_key(first)?.map(|k| (k, false))),
        };
        let end = at + 1 + hint.len();
        if b.get(at) == Some(&b'"')
            && b.get(end) == Some(&b'"')
            && b.get(at + 1..end).is_some_and(|k| same_bytes(k, hint.as_bytes()))
        {
            self.pos = end + 1;
            self.colon()?;
            return Ok(Some((Str { quoted: &self.text[at..end + 1], escaped: false }, true)));
        }
        Ok(Some((self.key_and_colon()?, false)))
    }

    /// The digits of a string that holds a plain integer (`"-?[1-9][0-9]*"` or `"0"`, at most
    /// 18 digits), the next token, read past; `None`, reading nothing, when it is anything else.
    #[inline]
    pub fn quoted_integer(&mut self) -> Option<&'a str> {
        let b = self.bytes();
        if b.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start + usize::from(b.get(start) == Some(&b'-'));
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let text = &self.text[start..i];
        if b.get(i) != Some(&b'"') || !is_plain_integer(text) {
            return None;
        }
        self.pos = i + 1;
        Some(text)
    }

    fn close<T>(&mut self) -> Result<Option<T>> {
        self.pos += 1;
        self.depth -= 1;
        Ok(None)
    }

    /// Whether another element follows in an array (its comma read); `first` is true before the first.
    #[inline]
    pub fn next_element(&mut self, first: bool) -> Result<bool> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if first => Ok(true),
            _ => self.fail("a comma or ] expected"),
        }
    }

    /// A string token (the position is at its opening quote, whitespace skipped).
    #[inline]
    pub fn string(&mut self) -> Result<Str<'a>> {
        if self.peek() != Some(b'"') {
            return self.fail("a string expected");
        }
        let b = self.bytes();
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            while let Some(word) = word_at(b, i) {
                let m = specials(word);
                if m != 0 {
                    i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Str { quoted: &self.text[start..i + 1], escaped });
                }
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return self.fail("a control character in a string");
                }
                Some(_) => i += 1,
                None => {
                    self.pos = i;
                    return self.fail("the text ends inside a string");
                }
            }
        }
    }

    /// The position after the escape at `i` (a backslash).
    fn escape(&mut self, i: usize) -> Result<usize> {
        let b = self.bytes();
        match b.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') if b.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => {
                // D800 to DFFF: a surrogate.
                self.surrogates |=
                    matches!(b[i + 2], b'd' | b'D') && matches!(b[i + 3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F');
                Ok(i + 6)
            }
            _ => {
                self.pos = i;
                self.fail("an invalid escape in a string")
            }
        }
    }

    /// A number token, as written.
    #[inline]
    pub fn number(&mut self) -> Result<&'a str> {
        self.peek();
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i + 1),
            _ => {
                self.pos = i;
                return self.fail("a digit expected");
            }
        }
        if b.get(i) == Some(&b'.') {
            let after = digits(i + 1);
            if after == i + 1 {
                self.pos = after;
                return self.fail("a digit expected after the decimal point");
            }
            i = after;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let after = digits(i);
            if after == i {
                self.pos = after;
                return self.fail("a digit expected in the exponent");
            }
            i = after;
        }
        self.pos = i;
        Ok(&self.text[start..i])
    }

    /// `true`, `false` or `null`, as written.
    pub fn literal(&mut self) -> Result<&'static str> {
        self.peek();
        let rest = &self.bytes()[self.pos..];
        for word in ["true", "false", "null"] {
            if rest.starts_with(word.as_bytes()) {
                self.pos += word.len();
                return Ok(word);
            }
        }
        self.fail("a value expected")
    }

    /// Reads past the next value, checking it.
    pub fn skip(&mut self) -> Result<()> {
        match self.kind()? {
            Kind::Object => {
                self.begin_object()?;
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    self.skip()?;
                }
                Ok(())
            }
            Kind::Array => {
                self.begin_array()?;
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    self.skip()?;
                }
                Ok(())
            }
            Kind::String => self.string().map(drop),
            Kind::Number => self.number().map(drop),
            Kind::Literal => self.literal().map(drop),
        }
    }

    /// Reads past the next value, checking it, and answers its text.
    pub fn value_text(&mut self) -> Result<&'a str> {
        self.peek();
        let start = self.pos;
        self.skip()?;
        Ok(&self.text[start..self.pos])
    }
}

/// `-?[1-9][0-9]*` or `0`, short enough for an i64: the same text a parse and print would give.
pub fn is_plain_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

/// What [`check_object`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// A non-null top-level `error`.
    pub error: bool,
    /// A `\\uXXXX` escape of a surrogate somewhere (it may be unpaired: see [`crate::text`]).
    pub surrogates: bool,
}

/// Checks that `text` is one JSON object, and says whether it holds a top-level `error`.
pub fn check_object(text: &str) -> Result<Checked> {
    let mut sc = Scanner::new(text);
    sc.begin_object()?;
    let mut error = false;
    let mut first = true;
    while let Some(key) = sc.next_key(first)? {
        first = false;
        if key.value()? != "error" {
            sc.skip()?;
        } else if sc.kind()? == Kind::Literal {
            error |= sc.literal()? != "null";
        } else {
            sc.skip()?;
            error = true;
        }
    }
    sc.end()?;
    Ok(Checked { error, surrogates: sc.surrogates })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner accepts a text exactly when `serde_json` does.
    fn agrees(text: &str) {
        let ours = {
            let mut sc = Scanner::new(text);
            sc.skip().and_then(|_| sc.end())
        };
        let theirs = serde_json::from_str::<serde_json::Value>(text);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{text:?}: ours {ours:?}, serde_json {theirs:?}");
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let cases = [
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : [1, -2, 3.5, -0.0, 1e5, 1E-5, 2.5e+3, true, false, null, "x"] } "#,
            r#"{"a":"\u00e9\n\"\\\/\b\f\r\t","b":{"c":[[[]]]}}"#,
            r#"{"a":"12345678901234567890 long enough for words \" and more text here"}"#,
            "\"tab\there\"",
            "\"nul\u{0}\"",
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"[,1]"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"01"#,
            r#"1."#,
            r#"-"#,
            r#"1e"#,
            r#"1e+"#,
            r#".5"#,
            r#"+1"#,
            r#"tru"#,
            r#"nulll"#,
            r#""\x""#,
            r#""\u12g4""#,
            r#""\u12"#,
            r#""abc"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            "",
            "   ",
            r#"[1 2]"#,
            r#"{"a":1 "b":2}"#,
            r#""ünïcödé ✓ 😀""#,
        ];
        for c in cases {
            agrees(c);
        }
        agrees(&format!("{}{}", "[".repeat(127), "]".repeat(127)));
        agrees(&format!("{}{}", "[".repeat(128), "]".repeat(128)));
    }

    #[test]
    fn finds_every_string_end_whatever_its_offset_in_a_word() {
        for len in 0..40 {
            for special in ["\"", "\\n", "\u{1}"] {
                let body: String = "x".repeat(len);
                let text = format!("[\"{body}{special}tail\"]");
                agrees(&text);
                let mut sc = Scanner::new(&text);
                sc.begin_array().unwrap();
                if special != "\u{1}" {
                    let s = sc.string();
                    if special == "\"" {
                        assert_eq!(s.unwrap().raw(), body);
                    } else {
                        assert_eq!(s.unwrap().value().unwrap(), format!("{body}\ntail"));
                    }
                }
            }
        }
    }

    #[test]
    fn tells_an_error_object_from_data_and_sees_surrogate_escapes() {
        let error = |t: &str| check_object(t).map(|c| c.error);
        assert_eq!(error(r#"{"data": [], "error": {"code": 1}}"#), Ok(true));
        assert_eq!(error(r#"{"data": [], "error": null}"#), Ok(false));
        assert_eq!(error(r#"{"data": [{"error": 1}]}"#), Ok(false));
        assert_eq!(error(r#"{"\u0065rror": 2}"#), Ok(true));
        assert!(error(r#"[]"#).is_err());
        assert!(error(r#"{"data": [}"#).is_err());
        let surrogates = |t: &str| check_object(t).unwrap().surrogates;
        assert!(!surrogates(r#"{"a": "\u00e9 \uD7FF \uE000 \n"}"#));
        assert!(surrogates(r#"{"a": "\ud83d"}"#));
        assert!(surrogates(r#"{"a": "x\uDC00"}"#));
        assert!(surrogates(r#"{"a": ["\ud83d\ude00"]}"#));
    }
}
