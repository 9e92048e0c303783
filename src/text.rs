//! Text as Graph sends it: JSON bodies whose strings are not all valid Unicode are repaired
//! before they are parsed, so that one odd character costs one character, not a page.
//!
//! Graph cuts long names by UTF-16 length, so a name may end inside a surrogate pair: the page
//! then holds an escaped unpaired surrogate (`"\ud83d"`), which a strict JSON parser refuses.
//! Raw bytes that are not UTF-8 (a `0xFF`, or a surrogate encoded as three bytes) are refused
//! the same way. Python-based readers decode both to U+FFFD and read the page; so does this
//! connector: every invalid UTF-8 sequence (each maximal invalid part, as the Unicode standard
//! recommends) and every unpaired surrogate escape becomes U+FFFD. Everything else is kept byte
//! for byte, and a body that needs no repair is not copied.

use std::borrow::Cow;

/// The three bytes of U+FFFD in UTF-8.
const REPLACEMENT: &str = "\u{FFFD}";

/// What a repair changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Invalid UTF-8 sequences replaced.
    pub invalid_utf8: usize,
    /// Escaped unpaired surrogates replaced.
    pub lone_surrogates: usize,
}

impl Repairs {
    /// Characters replaced, of either kind.
    pub fn count(self) -> usize {
        self.invalid_utf8 + self.lone_surrogates
    }

    pub fn any(self) -> bool {
        self.count() > 0
    }
}

/// `body` with invalid UTF-8 and escaped unpaired surrogates replaced by U+FFFD, and what was
/// replaced. Borrowed, not copied, when nothing needed replacing.
pub fn repair_json(body: &[u8]) -> (Cow<'_, [u8]>, Repairs) {
    let mut repairs = Repairs::default();
    let text: Cow<'_, str> = match std::str::from_utf8(body) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(body.len() + 16);
            for chunk in body.utf8_chunks() {
                out.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    repairs.invalid_utf8 += 1;
                    out.push_str(REPLACEMENT);
                }
            }
            Cow::Owned(out)
        }
    };
    match repair_escapes(&text, &mut repairs) {
        Some(fixed) => (Cow::Owned(fixed.into_bytes()), repairs),
        None => match text {
            Cow::Borrowed(_) => (Cow::Borrowed(body), repairs),
            Cow::Owned(s) => (Cow::Owned(s.into_bytes()), repairs),
        },
    }
}

/// The same for a string (a batch operation's body, which travels as a JSON string).
pub fn repair_json_str(text: &str) -> Cow<'_, str> {
    let mut repairs = Repairs::default();
    match repair_escapes(text, &mut repairs) {
        Some(fixed) => Cow::Owned(fixed),
        None => Cow::Borrowed(text),
    }
}

/// The value of the `\uXXXX` escape at `at` (which holds the backslash), if it is one.
fn escape_at(bytes: &[u8], at: usize) -> Option<u16> {
    let hex = bytes.get(at + 2..at + 6)?;
    if bytes.get(at + 1) != Some(&b'u') {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

fn is_high(u: u16) -> bool {
    (0xD800..0xDC00).contains(&u)
}

fn is_low(u: u16) -> bool {
    (0xDC00..0xE000).contains(&u)
}

/// `text` with every escaped unpaired surrogate replaced, or `None` when it has none. In JSON a
/// backslash only occurs inside strings, each starting an escape, so a scan from escape to
/// escape needs no other grammar.
fn repair_escapes(text: &str, repairs: &mut Repairs) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes before `copied` are in `out` already (when it exists).
    let mut copied = 0;
    let mut i = 0;
    // `i` may pass the end by one: a body cut right after a backslash.
    while let Some(offset) = bytes.get(i..).and_then(|rest| find_byte(rest, b'\\')) {
        let at = i + offset;
        let Some(unit) = escape_at(bytes, at) else {
            // Any other escape is two bytes (a malformed one is left for the parser to name).
            i = at + 2;
            continue;
        };
        let paired = is_high(unit) && escape_at(bytes, at + 6).is_some_and(is_low);
        if paired {
            i = at + 12;
            continue;
        }
        if !is_high(unit) && !is_low(unit) {
            i = at + 6;
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[copied..at]);
        o.push_str("\\ufffd");
        repairs.lone_surrogates += 1;
        i = at + 6;
        copied = i;
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// Where `needle` first occurs in `hay`: eight bytes at a time (a body has few backslashes,
/// and this scan reads every byte of every answer).
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = LOW * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ pattern;
        // A zero byte of `x` is a match (the classic has-zero-byte test).
        if (x.wrapping_sub(LOW) & !x & HIGH) != 0 {
            return w.iter().position(|&b| b == needle).map(|i| at + i);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

/// How a JSON body failed to parse: the parser's words and where, and whether the same failure
/// again is the body's own. A page that is no JSON at all is a proxy's or a load balancer's
/// ("Service Unavailable") and a body that ends too soon was cut on its way: both pass; JSON
/// broken at the same byte twice does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFailure {
    /// `<parser's message>, at byte <offset> of <length>`.
    pub what: String,
    pub offset: usize,
    /// Whether seeing it twice means retrying cannot help.
    pub lasting: bool,
}

impl ParseFailure {
    pub fn of(body: &[u8], e: &serde_json::Error) -> ParseFailure {
        let offset = byte_offset(body, e.line(), e.column());
        let json_like = body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'['));
        ParseFailure {
            what: format!("{e}, at byte {offset} of {}", body.len()),
            offset,
            lasting: json_like && !e.is_eof(),
        }
    }

    /// Whether this failure, after `before` last time, is the body's own.
    pub fn repeats(&self, before: Option<&str>) -> bool {
        self.lasting && before == Some(self.what.as_str())
    }
}

/// The byte offset of a parser's (1-based) line and column in `body`, to name where a body is
/// malformed.
pub fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let start: usize = body.split(|&b| b == b'\n').take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
    (start + column.saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn repaired(body: &[u8]) -> (String, Repairs) {
        let (b, r) = repair_json(body);
        (String::from_utf8(b.into_owned()).unwrap(), r)
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search_at_every_offset_and_length() {
        let mut hay: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len in 0..hay.len() {
            for at in 0..=len {
                if at < len {
                    hay[at] = b'\\';
                }
                let plain = hay[..len].iter().position(|&b| b == b'\\');
                assert_eq!(find_byte(&hay[..len], b'\\'), plain, "len {len}, backslash at {at}");
                if at < len {
                    hay[at] = b'a';
                }
            }
        }
        // Bytes whose subtraction borrows across lanes (0x00, 0x80, the needle plus one).
        assert_eq!(find_byte(&[0x00, 0x80, 0x5d, 0x5b, 0xff, 0x01, 0x5c, 0x00, 0x5c], b'\\'), Some(6));
        assert_eq!(find_byte(&[0x5d; 17], b'\\'), None);
    }

    #[test]
    fn a_lone_high_surrogate_cut_by_graph_becomes_a_replacement_character() {
        let body = br#"{"name":"Summer sale \ud83d"}"#;
        let (text, r) = repaired(body);
        assert_eq!(r.lone_surrogates, 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], "Summer sale \u{FFFD}");
    }

    #[test]
    fn a_lone_low_surrogate_and_a_high_one_before_another_escape_are_replaced() {
        let (text, r) = repaired(br#"["\udc00x","\ud83d\u0041","\ud83d\ud83d\ude00"]"#);
        assert_eq!(r.lone_surrogates, 3);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, serde_json::json!(["\u{FFFD}x", "\u{FFFD}A", "\u{FFFD}\u{1F600}"]));
    }

    #[test]
    fn invalid_utf8_bytes_become_replacement_characters() {
        // 0xFF, and a surrogate encoded in three bytes (CESU-8), which UTF-8 forbids.
        let body = b"{\"ad_name\":\"a\xFFb\",\"n\":\"\xED\xA0\xBDc\"}";
        let (text, r) = repaired(body);
        assert!(r.invalid_utf8 >= 2, "{r:?}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ad_name"], "a\u{FFFD}b");
        assert!(v["n"].as_str().unwrap().ends_with("\u{FFFD}c"));
    }

    #[test]
    fn valid_text_is_kept_byte_for_byte_and_not_copied() {
        let body = "{\"a\":\"\\ud83d\\ude00 😀 日本語 \\\"q\\\" \\\\ud83d \\u0007 \\n\"}".as_bytes();
        let (b, r) = repair_json(body);
        assert!(!r.any());
        assert!(matches!(b, Cow::Borrowed(_)), "no copy");
        assert_eq!(&*b, body);
        // An escaped backslash followed by "ud83d" is text, not an escape.
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v["a"].as_str().unwrap().contains("\\ud83d"));
    }

    #[test]
    fn a_batch_body_string_is_repaired_the_same_way() {
        assert_eq!(repair_json_str(r#"{"name":"x\udbff"}"#), r#"{"name":"x\ufffd"}"#);
        assert!(matches!(repair_json_str(r#"{"name":"ok"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn a_truncated_escape_at_the_end_is_left_for_the_parser() {
        let (text, r) = repaired(br#"{"a":"\ud8"#);
        assert!(!r.any());
        assert_eq!(text, r#"{"a":"\ud8"#);
    }

    #[test]
    fn a_body_cut_right_after_a_backslash_is_left_for_the_parser() {
        let (text, r) = repaired(br#"{"a":"x\"#);
        assert!(!r.any());
        assert_eq!(text, r#"{"a":"x\"#);
    }

    #[test]
    fn byte_offsets_follow_lines_and_columns() {
        let body = b"{\n  \"a\": x\n}";
        assert_eq!(byte_offset(body, 2, 8), 9);
        assert_eq!(body[9], b'x');
        assert_eq!(byte_offset(body, 1, 1), 0);
    }
}
