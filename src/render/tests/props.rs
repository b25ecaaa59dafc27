//! Properties over arbitrary bytes: no panic, chunking changes nothing, the HTML is only ours.

use proptest::prelude::*;

use super::{amplification, render, render_chunks};
use crate::render::{Line, Renderer, line_markup};

/// Pieces of a log: bytes biased toward what makes escapes, markup and line edits, and whole
/// tokens that random bytes would rarely spell.
fn log_piece() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&[u8]> = vec![
        b"\x1b[",
        b"\x1b]8;;https://h.test/<\"'>",
        b"\x1b]8;;javascript:x",
        b"\x1b]8;;",
        b"\x1b\\",
        b"38;2;",
        b"48;5;",
        b"\x1bP",
        b"\xe2\x82\xac",
        b"https://h.test/",
        b"HTTP://[",
        b" http://x",
    ];
    prop_oneof![
        4 => log_byte().prop_map(|b| vec![b]),
        1 => prop::sample::select(tokens).prop_map(<[u8]>::to_vec),
    ]
}

fn log_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => Just(0x1b),
        3 => prop::sample::select(b"[];:8\\".to_vec()),
        3 => b'0'..=b'9',
        2 => prop::sample::select(b"<>&\"'".to_vec()),
        2 => prop::sample::select(b"\r\n\t\x07\x08".to_vec()),
        2 => prop::sample::select(b"mKGCDHJhlP_^X?".to_vec()),
        1 => prop::sample::select(b"https:/javascript".to_vec()),
        2 => 0x80u8..=0xff,
        2 => any::<u8>(),
    ]
}

/// Pieces that try to make much HTML of few bytes: cursor jumps past the end, overwrites of
/// every other cell, long hrefs, the most expensive style, on top of the pieces above.
fn amplifying_piece() -> impl Strategy<Value = Vec<u8>> {
    let href = format!("\x1b]8;;https://h.test/{}\x1b\\", "&".repeat(400));
    let tokens: Vec<Vec<u8>> = vec![
        b"\x1b[C".to_vec(),
        b"\x1b[60000C".to_vec(),
        b"\x1b[999G".to_vec(),
        b"\r".to_vec(),
        href.into_bytes(),
        b"\x1b[1;2;3;4;9;7;38;2;1;2;3;48;2;4;5;6m".to_vec(),
        b"\x1b[0m".to_vec(),
        b"\"\"\"\"".to_vec(),
        b" http://a".to_vec(),
        format!("https://h.test/{}", "&".repeat(400)).into_bytes(),
    ];
    prop_oneof![
        2 => log_piece(),
        2 => prop::sample::select(tokens),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

/// The text a line's HTML shows, in bytes: what is left without tags and entities.
fn text_len(html: &str) -> usize {
    let mut len = 0;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            rest = &rest[rest.find('>').map_or(rest.len(), |i| i + 1)..];
        } else if c == '&' {
            rest = &rest[rest.find(';').map_or(rest.len(), |i| i + 1)..];
            len += 1;
        } else {
            len += c.len_utf8();
            rest = &rest[c.len_utf8()..];
        }
    }
    len
}

/// Checks the bounds on the HTML of `bytes`: in all at most 32 times the bytes (and the page's
/// markup at most 128 more per line), and each line at most a fixed multiple of its text.
fn check_bounds(bytes: &[u8], lines: &[Line]) -> Result<(), TestCaseError> {
    let html: usize = lines.iter().map(|l| l.html.len()).sum();
    prop_assert!(html <= 32 * bytes.len(), "{} bytes of HTML from {} bytes", html, bytes.len());
    let page: usize = lines.iter().map(|l| line_markup(l, std::time::UNIX_EPOCH).len()).sum();
    prop_assert!(page <= 32 * bytes.len() + 128 * lines.len());
    for line in lines {
        let text = text_len(&line.html);
        prop_assert!(
            line.html.len() <= super::HTML_BYTES_PER_TEXT_BYTE * text + super::HTML_BYTES_PER_LINE,
            "{} bytes of HTML for {} of text",
            line.html.len(),
            text
        );
    }
    Ok(())
}

/// Feeds `bytes` in chunks of the given sizes (cycled).
fn render_sized(bytes: &[u8], sizes: &[usize]) -> Vec<Line> {
    let mut r = Renderer::new();
    let (mut lines, mut at) = (Vec::new(), 0);
    for &size in sizes.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        lines.extend(r.push(&bytes[at..end]));
        at = end;
    }
    lines.extend(r.finish());
    lines
}

#[test]
fn the_amplification_input_is_within_the_bounds() {
    let bytes = amplification(2, super::HREF_MAX_BYTES);
    check_bounds(&bytes, &render(&bytes)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chunking_changes_nothing_and_the_html_is_ours(
        pieces in prop::collection::vec(log_piece(), 0..300),
        sizes in prop::collection::vec(1usize..24, 1..8),
    ) {
        let bytes = pieces.concat();
        let whole = render(&bytes);
        prop_assert_eq!(&render_sized(&bytes, &sizes), &whole);
        for (i, line) in whole.iter().enumerate() {
            prop_assert_eq!(line.number, i as u64 + 1);
            if let Err(e) = check_html(&line.html) {
                return Err(TestCaseError::fail(format!("{e} in {:?}", line.html)));
            }
        }
    }

    #[test]
    fn the_html_is_bounded_by_the_bytes_it_is_made_of(
        pieces in prop::collection::vec(amplifying_piece(), 0..400),
        sizes in prop::collection::vec(1usize..4096, 1..8),
    ) {
        let bytes = pieces.concat();
        let lines = render_sized(&bytes, &sizes);
        check_bounds(&bytes, &lines)?;
        for line in &lines {
            if let Err(e) = check_html(&line.html) {
                return Err(TestCaseError::fail(format!("{e} in {:?}", line.html)));
            }
        }
    }

    #[test]
    fn the_html_of_arbitrary_bytes_is_bounded(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check_bounds(&bytes, &render(&bytes))?;
    }

    #[test]
    fn plain_bytes_decode_as_from_utf8_lossy(bytes in prop::collection::vec(0x20u8..=0xff, 0..200)) {
        let bytes: Vec<u8> = bytes.into_iter().filter(|&b| b != 0x7f).collect();
        let expected: String = String::from_utf8_lossy(&bytes)
            .chars()
            .filter(|c| !('\u{80}'..='\u{9f}').contains(c))
            .collect();
        let lines = render_chunks(&bytes, 3);
        let text = lines.first().map(|l| unescape(&l.html)).unwrap_or_default();
        prop_assert_eq!(text, expected);
    }
}

const ENTITIES: [(&str, char); 5] =
    [("&lt;", '<'), ("&gt;", '>'), ("&amp;", '&'), ("&quot;", '"'), ("&#39;", '\'')];

fn unescape(html: &str) -> String {
    let mut out = html.to_owned();
    for (entity, c) in ENTITIES {
        out = out.replace(entity, &c.to_string());
    }
    out
}

/// A small scanner of the only HTML a line may hold: text with our five entities, balanced
/// `<span>` (optional `class` of `c-…` words, optional `style` of colours) and `<a>` with an
/// http(s) `href` and `rel="nofollow noopener"`, never nested in each other the wrong way.
fn check_html(html: &str) -> Result<(), String> {
    let mut rest = html;
    let mut stack: Vec<&str> = Vec::new();
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => rest = check_tag(rest, &mut stack)?,
            '&' => {
                let (entity, _) =
                    ENTITIES.iter().find(|(e, _)| rest.starts_with(e)).ok_or("bare &")?;
                rest = &rest[entity.len()..];
            }
            '>' | '"' | '\'' => return Err(format!("raw {c} in text")),
            _ => rest = &rest[c.len_utf8()..],
        }
    }
    if stack.is_empty() { Ok(()) } else { Err(format!("unclosed {stack:?}")) }
}

/// Checks the tag at the start of `rest`; returns what follows it.
fn check_tag<'a>(rest: &'a str, stack: &mut Vec<&'static str>) -> Result<&'a str, String> {
    if let Some(after) = rest.strip_prefix("</span>") {
        return (stack.pop() == Some("span"))
            .then_some(after)
            .ok_or_else(|| "stray </span>".into());
    }
    if let Some(after) = rest.strip_prefix("</a>") {
        return (stack.pop() == Some("a")).then_some(after).ok_or_else(|| "stray </a>".into());
    }
    if let Some(after) = rest.strip_prefix("<a href=\"") {
        if !stack.is_empty() {
            return Err("<a> inside another tag".into());
        }
        let (href, after) = after.split_once("\" rel=\"nofollow noopener\">").ok_or("bad <a>")?;
        if !(href.starts_with("http:") || href.starts_with("https:"))
            || href.contains(['<', '>', '"', '\'', ' '])
        {
            return Err(format!("bad href {href:?}"));
        }
        stack.push("a");
        return Ok(after);
    }
    let mut after = rest.strip_prefix("<span").ok_or("a tag that is not ours")?;
    if let Some(a) = after.strip_prefix(" class=\"") {
        let (classes, a) = a.split_once('"').ok_or("unclosed class")?;
        if !classes.split(' ').all(|c| {
            c.starts_with("c-")
                && c[2..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }) {
            return Err(format!("bad class {classes:?}"));
        }
        after = a;
    }
    if let Some(a) = after.strip_prefix(" style=\"") {
        let (style, a) = a.split_once('"').ok_or("unclosed style")?;
        let declaration_ok = |d: &str| {
            let hex = d.strip_prefix("color:#").or_else(|| d.strip_prefix("background-color:#"));
            hex.is_some_and(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))
        };
        if !style.split(';').all(declaration_ok) {
            return Err(format!("bad style {style:?}"));
        }
        after = a;
    }
    let after = after.strip_prefix('>').ok_or("bad <span>")?;
    if stack.last() == Some(&"span") {
        return Err("nested <span>".into());
    }
    stack.push("span");
    Ok(after)
}
