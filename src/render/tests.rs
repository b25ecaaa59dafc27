//! The renderer, feature by feature: SGR, line editing, swallowed escapes, links, UTF-8, splits.

mod fixtures;
mod props;

use super::*;

/// Every line of `bytes` fed in one push, then finished.
pub(super) fn render(bytes: &[u8]) -> Vec<Line> {
    render_chunks(bytes, bytes.len().max(1))
}

/// Every line of `bytes` fed `size` bytes at a time, then finished.
pub(super) fn render_chunks(bytes: &[u8], size: usize) -> Vec<Line> {
    let mut r = Renderer::new();
    let mut lines: Vec<Line> = bytes.chunks(size).flat_map(|chunk| r.push(chunk)).collect();
    lines.extend(r.finish());
    lines
}

/// The HTML of every line.
pub(super) fn html(bytes: &[u8]) -> Vec<String> {
    let whole = render(bytes);
    assert_eq!(whole, render_chunks(bytes, 1), "byte by byte differs for {bytes:?}");
    whole.into_iter().map(|l| l.html).collect()
}

/// The HTML of a one-line input.
fn one(bytes: &[u8]) -> String {
    let lines = html(bytes);
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.into_iter().next().unwrap_or_default()
}

#[test]
fn lines_are_numbered_from_one_and_the_last_may_be_unterminated() {
    let lines = render(b"one\ntwo\nthree");
    let numbers: Vec<u64> = lines.iter().map(|l| l.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(lines[2].html, "three");
    assert_eq!(html(b"a\n\nb\n"), ["a", "", "b"]);
    assert!(render(b"").is_empty());
    assert!(render(b"\x1b[31m").is_empty());
}

#[test]
fn finish_returns_the_unterminated_line_and_resets() {
    let mut r = Renderer::new();
    assert_eq!(r.push(b"a\nb"), [Line { number: 1, html: "a".into(), wrapped: false }]);
    assert_eq!(r.finish(), Some(Line { number: 2, html: "b".into(), wrapped: false }));
    assert_eq!(r.finish(), None);
    assert_eq!(r.push(b"c\n"), [Line { number: 1, html: "c".into(), wrapped: false }]);
}

#[test]
fn line_markup_wraps_a_line_with_its_anchor() {
    let line = Line { number: 7, html: "<span class=\"c-bold\">x</span>".into(), wrapped: false };
    assert_eq!(
        line_markup(
            &line,
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_435_201_234)
        ),
        "<div class=\"line\" id=\"L7\"><a href=\"#L7\">7</a>\
         <time>12:00:01.234</time><span><span class=\"c-bold\">x</span></span></div>\n"
    );
}

#[test]
fn line_numbers_of_any_size_are_written_in_decimal() {
    for n in [1, 9, 10, 99, 1_000_000, u64::MAX] {
        let line = Line { number: n, html: String::new(), wrapped: false };
        let markup = line_markup(&line, std::time::UNIX_EPOCH);
        assert!(
            markup
                .starts_with(&format!("<div class=\"line\" id=\"L{n}\"><a href=\"#L{n}\">{n}</a>")),
            "{markup}"
        );
    }
}

#[test]
fn text_is_escaped() {
    assert_eq!(
        one(b"<script>alert('x&y')</script> \"q\""),
        "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt; &quot;q&quot;"
    );
}

#[test]
fn carriage_return_overwrites_from_the_start() {
    assert_eq!(one(b"abcdef\rXY"), "XYcdef");
    assert_eq!(one(b"10%\r50%\r100%"), "100%");
    assert_eq!(html(b"a\r\nb\r\n"), ["a", "b"]);
    assert_eq!(html(b"a\r"), ["a"]);
    assert_eq!(one(b"\x1b[31mred\r\x1b[0mRE"), "RE<span class=\"c-fg-1\">d</span>");
}

#[test]
fn erase_in_line_acts_on_the_current_line() {
    assert_eq!(one(b"downloading 10%\r\x1b[Kdone"), "done");
    assert_eq!(one(b"downloading 10%\r\x1b[2Kdone"), "done");
    assert_eq!(one(b"abcdef\x1b[3G\x1b[0K"), "ab");
    assert_eq!(one(b"abcdef\x1b[3G\x1b[1K"), "   def");
    assert_eq!(one(b"abc\x1b[2Kd"), "   d");
}

#[test]
fn cursor_moves_within_the_line() {
    assert_eq!(one(b"abc\x1b[2Dx"), "axc");
    assert_eq!(one(b"abc\x1b[Dx"), "abx");
    assert_eq!(one(b"a\x1b[3Cb"), "a   b");
    assert_eq!(one(b"abcdef\x1b[3Gx"), "abxdef");
    assert_eq!(one(b"ab\x08c"), "ac");
    assert_eq!(one(b"\x08\x08a"), "a");
    // A huge jump is capped; what follows goes on a new line rather than past the limit.
    let lines = html(b"a\x1b[65535C\x1b[65535Cb");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], "b");
}

#[test]
fn tab_is_kept_and_other_controls_dropped() {
    assert_eq!(one(b"a\tb\x00\x01\x07\x0b\x0c\x0e\x7fc"), "a\tbc");
    assert_eq!(one("x\u{85}\u{9b}y".as_bytes()), "xy");
}

#[test]
fn sixteen_colours_are_classes() {
    for n in 0..8u8 {
        let fg = format!("\x1b[{}mx", 30 + n);
        assert_eq!(one(fg.as_bytes()), format!("<span class=\"c-fg-{n}\">x</span>"));
        let bg = format!("\x1b[{}mx", 40 + n);
        assert_eq!(one(bg.as_bytes()), format!("<span class=\"c-bg-{n}\">x</span>"));
        let bright = format!("\x1b[{}mx", 90 + n);
        assert_eq!(one(bright.as_bytes()), format!("<span class=\"c-fg-{}\">x</span>", n + 8));
        let bright_bg = format!("\x1b[{}mx", 100 + n);
        assert_eq!(one(bright_bg.as_bytes()), format!("<span class=\"c-bg-{}\">x</span>", n + 8));
    }
}

#[test]
fn palette_colours_below_16_are_classes_and_above_computed() {
    assert_eq!(one(b"\x1b[38;5;1mx"), "<span class=\"c-fg-1\">x</span>");
    assert_eq!(one(b"\x1b[48;5;12mx"), "<span class=\"c-bg-12\">x</span>");
    assert_eq!(one(b"\x1b[38;5;16mx"), "<span style=\"color:#000000\">x</span>");
    assert_eq!(one(b"\x1b[38;5;196mx"), "<span style=\"color:#ff0000\">x</span>");
    assert_eq!(one(b"\x1b[38;5;110mx"), "<span style=\"color:#87afd7\">x</span>");
    assert_eq!(one(b"\x1b[38;5;231mx"), "<span style=\"color:#ffffff\">x</span>");
    assert_eq!(one(b"\x1b[48;5;232mx"), "<span style=\"background-color:#080808\">x</span>");
    assert_eq!(one(b"\x1b[48;5;255mx"), "<span style=\"background-color:#eeeeee\">x</span>");
    assert_eq!(one(b"\x1b[38:5:196mx"), "<span style=\"color:#ff0000\">x</span>");
}

#[test]
fn truecolor_in_both_forms() {
    assert_eq!(one(b"\x1b[38;2;1;2;255mx"), "<span style=\"color:#0102ff\">x</span>");
    assert_eq!(one(b"\x1b[48;2;16;32;48mx"), "<span style=\"background-color:#102030\">x</span>");
    assert_eq!(one(b"\x1b[38:2::10:20:30mx"), "<span style=\"color:#0a141e\">x</span>");
    assert_eq!(one(b"\x1b[38:2:10:20:30mx"), "<span style=\"color:#0a141e\">x</span>");
    assert_eq!(
        one(b"\x1b[38;2;1;1;1;48;2;2;2;2;1mx"),
        "<span class=\"c-bold\" style=\"color:#010101;background-color:#020202\">x</span>"
    );
}

#[test]
fn invalid_extended_colours_change_nothing() {
    assert_eq!(one(b"\x1b[38;2;300;0;0mx"), "x");
    assert_eq!(one(b"\x1b[38;5;256mx"), "x");
    assert_eq!(one(b"\x1b[38;5mx"), "x");
    assert_eq!(one(b"\x1b[38;2;1;2mx"), "x");
    // The underline colour is consumed, not shown; what follows still applies.
    assert_eq!(one(b"\x1b[58;5;1;1mx"), "<span class=\"c-bold\">x</span>");
}

#[test]
fn attributes_and_their_resets() {
    let cases: [(&[u8], &str); 6] = [
        (b"1", "c-bold"),
        (b"2", "c-dim"),
        (b"3", "c-italic"),
        (b"4", "c-underline"),
        (b"9", "c-strike"),
        (b"7", "c-inverse"),
    ];
    for (code, class) in cases {
        let input = [b"\x1b[", code, b"mx"].concat();
        assert_eq!(one(&input), format!("<span class=\"{class}\">x</span>"));
    }
    assert_eq!(
        one(b"\x1b[1;2;3;4;7;9mx"),
        "<span class=\"c-bold c-dim c-italic c-underline c-strike c-inverse\">x</span>"
    );
    assert_eq!(one(b"\x1b[1;2;3;4;7;31;42m\x1b[22;23;24;27;39;49mx"), "x");
    assert_eq!(one(b"\x1b[1;3;31m\x1b[22mx"), "<span class=\"c-italic c-fg-1\">x</span>");
    assert_eq!(one(b"\x1b[1;31;42m\x1b[39mx"), "<span class=\"c-bold c-bg-2\">x</span>");
    assert_eq!(one(b"\x1b[1;31;42m\x1b[49mx"), "<span class=\"c-bold c-fg-1\">x</span>");
    assert_eq!(one(b"\x1b[1;31;42m\x1b[0mx"), "x");
    assert_eq!(one(b"\x1b[1;31;42m\x1b[mx"), "x");
    assert_eq!(one(b"\x1b[4:3mx\x1b[4:0my"), "<span class=\"c-underline\">x</span>y");
}

#[test]
fn inverse_swaps_the_colours() {
    assert_eq!(one(b"\x1b[7;31mx"), "<span class=\"c-inverse c-bg-1\">x</span>");
    assert_eq!(
        one(b"\x1b[7;48;2;1;2;3mx"),
        "<span class=\"c-inverse\" style=\"color:#010203\">x</span>"
    );
}

#[test]
fn styles_carry_across_line_ends_and_runs_merge() {
    assert_eq!(
        html(b"\x1b[31ma\nb\x1b[0mc\n"),
        ["<span class=\"c-fg-1\">a</span>", "<span class=\"c-fg-1\">b</span>c"]
    );
    assert_eq!(one(b"\x1b[32m+\x1b[m\x1b[32mnew"), "<span class=\"c-fg-2\">+new</span>");
}

#[test]
fn every_other_escape_is_swallowed_whole() {
    let escapes: [&[u8]; 22] = [
        b"\x1b[?25l",
        b"\x1b[?25h",
        b"\x1b[?2004h",
        b"\x1b[>4;1m",
        b"\x1b[2A",
        b"\x1b[B",
        b"\x1b[10;5H",
        b"\x1b[H\x1b[2J",
        b"\x1b[3J",
        b"\x1b[1 q",
        b"\x1b(B",
        b"\x1b)0",
        b"\x1b#8",
        b"\x1b7\x1b8",
        b"\x1b=\x1b>",
        b"\x1bc",
        b"\x1b]0;title <b>\x07",
        b"\x1b]2;title\x1b\\",
        b"\x1b]133;A\x07",
        b"\x1bP+q544e\x1b\\",
        b"\x1b_Gf=24;AAAA\x1b\\",
        b"\x1b^private\x1b\\\x1bXsos\x1b\\",
    ];
    for esc in escapes {
        let input = [b"a", esc, b"b"].concat();
        assert_eq!(one(&input), "ab", "{}", input.escape_ascii());
    }
}

#[test]
fn an_oversized_osc_is_swallowed_and_an_unfinished_escape_dropped() {
    let big = [b"a\x1b]8;;https://x/".as_slice(), &vec![b'y'; 10_000], b"\x07b"].concat();
    assert_eq!(one(&big), "ab");
    assert_eq!(one(b"a\x1b[31"), "a");
    assert_eq!(one(b"a\x1b]0;tit"), "a");
    // A newline in the middle of a CSI ends it, so a broken escape cannot eat the log.
    assert_eq!(html(b"a\x1b[3\nb"), ["a", "b"]);
}

#[test]
fn osc8_links_only_http_and_https() {
    assert_eq!(
        one(b"see \x1b]8;;https://example.com/a?b=1&c=\"<x>\"\x1b\\the docs\x1b]8;;\x1b\\ now"),
        "see <a href=\"https://example.com/a?b=1&amp;c=&quot;&lt;x&gt;&quot;\" rel=\"nofollow noopener\">the docs</a> now"
    );
    assert_eq!(
        one(b"\x1b]8;id=1;HTTP://h/a b\xc3\xa9\x07x\x1b]8;;\x07"),
        "<a href=\"http://h/a%20b%C3%A9\" rel=\"nofollow noopener\">x</a>"
    );
    assert_eq!(one(b"\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\"), "click");
    assert_eq!(one(b"\x1b]8;;file:///etc/passwd\x07f\x1b]8;;\x07"), "f");
    assert_eq!(one(b"\x1b]8;;data:text/html,<b>\x07d\x1b]8;;\x07"), "d");
}

#[test]
fn a_link_holds_its_styled_spans_and_survives_a_line_end() {
    assert_eq!(
        html(b"\x1b]8;;https://x.test/\x1b\\a\x1b[1mb\nc\x1b]8;;\x1b\\d"),
        [
            "<a href=\"https://x.test/\" rel=\"nofollow noopener\">a<span class=\"c-bold\">b</span></a>",
            "<a href=\"https://x.test/\" rel=\"nofollow noopener\"><span class=\"c-bold\">c</span></a><span class=\"c-bold\">d</span>",
        ]
    );
}

#[test]
fn a_line_holds_a_bounded_number_of_links() {
    let mut input = Vec::new();
    for i in 0..(line::LINKS_MAX_PER_LINE + 10) {
        input.extend(format!("\r\x1b]8;;https://x.test/{i}\x07x").bytes());
    }
    let out = one(&input);
    assert_eq!(out, "x", "the links past the bound render as text");
}

#[test]
fn invalid_utf8_is_replacement_characters_as_from_utf8_lossy() {
    let cases: [&[u8]; 8] = [
        b"a\xffb",
        b"\xc3(",
        b"\xe2\x82",
        b"\xe2\x82x",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"\xf4\x90\x80\x80",
        b"\xf0\x9f\x98\x80\x80",
    ];
    for bytes in cases {
        assert_eq!(one(bytes), String::from_utf8_lossy(bytes), "{}", bytes.escape_ascii());
    }
    assert_eq!(one(b"\xe2\x82\x1b[31mx"), "\u{fffd}<span class=\"c-fg-1\">x</span>");
}

#[test]
fn multibyte_sequences_split_across_pushes_decode() {
    let text = "é€😀 ok";
    for size in 1..4 {
        assert_eq!(render_chunks(text.as_bytes(), size)[0].html, text);
    }
}

#[test]
fn long_lines_are_split_at_line_max_bytes() {
    let input = [vec![b'x'; LINE_MAX_BYTES + 10], b"\ny".to_vec()].concat();
    let lines = render(&input);
    assert_eq!(lines.iter().map(|l| l.number).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(lines[0].html.len(), LINE_MAX_BYTES);
    assert_eq!(lines[1].html, "x".repeat(10));
    let wrapped: Vec<bool> = lines.iter().map(|l| l.wrapped).collect();
    assert_eq!(wrapped, [true, false, false]);
    // A line of exactly the limit is not split; a multi-byte character is never cut.
    assert_eq!(render(&vec![b'x'; LINE_MAX_BYTES]).len(), 1);
    let accents = "é".repeat(LINE_MAX_BYTES / 2 + 1);
    let lines = render(accents.as_bytes());
    assert_eq!(lines[0].html, "é".repeat(LINE_MAX_BYTES / 2));
    assert_eq!(lines[1].html, "é");
}

#[test]
fn the_split_counts_text_not_markup_and_overwrites_do_not_grow_it() {
    let input = "\x1b[31m<\x1b[32m>".repeat(LINE_MAX_BYTES / 2);
    let lines = render(input.as_bytes());
    assert_eq!(lines.len(), 1);
    let spinner = "|\r/\r-\r\\\r".repeat(LINE_MAX_BYTES);
    assert_eq!(html(spinner.as_bytes()), ["\\"]);
}

#[test]
fn whole_or_byte_by_byte_gives_the_same_lines() {
    let input = b"\x1b[1;31merr\xc3\xa9\x1b[0m: \x1b]8;;https://a.test\x1b\\l\x1b]8;;\x1b\\\r\nprog 1%\rprog 100%\x1b[K\n\x1bP1$r\x1b\\\xf0\x9f\x98";
    let whole = render(input);
    for size in [1, 2, 3, 5, 7] {
        assert_eq!(render_chunks(input, size), whole, "chunks of {size}");
    }
}

/// Issue 13's amplification: one OSC 8 link with an href of `href_bytes` over 8,000 cells, then
/// `\r` and `ESC[C` overwrites of every other cell, `lines` times.
pub(super) fn amplification(lines: usize, href_bytes: usize) -> Vec<u8> {
    let filler = "a".repeat(href_bytes - 15);
    let mut line = format!("\x1b]8;;https://x.test/{filler}\x1b\\").into_bytes();
    line.extend([b'x'; 8000]);
    line.extend(b"\x1b]8;;\x1b\\\r");
    for _ in 0..4000 {
        line.extend(b"y\x1b[C");
    }
    line.push(b'\n');
    line.repeat(lines)
}

#[test]
fn the_amplification_input_stays_within_32_times_its_bytes() {
    // As the issue has it (4 KB: the href is dropped), and with the longest href that is kept.
    for href_bytes in [4000, HREF_MAX_BYTES] {
        let input = amplification(3, href_bytes);
        let lines = render(&input);
        assert_eq!(lines.len(), 3);
        let html: usize = lines.iter().map(|l| l.html.len()).sum();
        assert!(html <= 32 * input.len(), "{html} bytes of HTML from {} bytes", input.len());
        for line in &lines {
            assert!(line.html.matches("https://x.test/").count() <= 1, "the href is written again");
            assert_eq!(line.html.matches('y').count(), 4000, "the text is all there");
        }
    }
}

#[test]
fn a_link_interrupted_by_overwrites_writes_its_href_once() {
    let out = one(b"\x1b]8;;https://x.test/\x1b\\abcd\x1b]8;;\x1b\\\rX\x1b[CY");
    assert_eq!(out, "X<a href=\"https://x.test/\" rel=\"nofollow noopener\">b</a>Yd");
}

#[test]
fn hrefs_over_2_kib_are_dropped() {
    let link = |href: &str| format!("\x1b]8;;{href}\x1b\\t\x1b]8;;\x1b\\").into_bytes();
    let longest = format!("https://x.test/{}", "a".repeat(2048 - 15));
    assert_eq!(longest.len(), 2048);
    assert!(one(&link(&longest)).starts_with("<a href="));
    assert_eq!(one(&link(&format!("{longest}a"))), "t");
    // The limit is on the href as written: escaping counts.
    assert_eq!(one(&link(&format!("https://x.test/{}", "&".repeat(500)))), "t");
}

#[test]
fn a_line_made_mostly_of_cursor_jumps_does_not_grow_past_its_bytes() {
    let input = b"\x1b[60000Cx\n".repeat(100);
    let lines = render(&input);
    assert_eq!(lines.len(), 100);
    let html: usize = lines.iter().map(|l| l.html.len()).sum();
    assert!(html <= 32 * input.len(), "{html} bytes of HTML from {} bytes", input.len());
    assert!(lines.iter().all(|l| l.html.ends_with('x')), "{:?}", lines[0]);
}

#[test]
fn styled_cells_in_alternation_fall_back_to_plain_text_within_the_bound() {
    // Two of the most expensive styles, one cell each in turn: over 32 times the bytes.
    let (first, second) =
        ("\x1b[1;2;3;4;9;7;38;2;1;2;3;48;2;4;5;6m", "\x1b[0;1;2;3;4;9;38;2;7;8;9;48;2;1;1;1m");
    let mut input = format!("{first}{}\r{second}", "a".repeat(8000)).into_bytes();
    for _ in 0..4000 {
        input.extend(b"b\x1b[C");
    }
    input.push(b'\n');
    let out = one(&input);
    assert!(out.len() <= 32 * input.len(), "{} bytes from {}", out.len(), input.len());
    assert_eq!(out, "ba".repeat(4000), "the text is all there");
}

#[test]
fn plain_urls_are_linked_escaped_and_without_their_sentence() {
    assert_eq!(
        one(b"see https://x.test/a?b=1&c=2. Done"),
        "see <a href=\"https://x.test/a?b=1&amp;c=2\" rel=\"nofollow noopener\">https://x.test/a?b=1&amp;c=2</a>. Done"
    );
    assert_eq!(
        one(b"(http://h:8080/p)"),
        "(<a href=\"http://h:8080/p\" rel=\"nofollow noopener\">http://h:8080/p</a>)"
    );
    // Styles inside a URL stay inside its link.
    assert_eq!(
        one(b"\x1b[1mhttps://x.test/\x1b[0ma"),
        "<a href=\"https://x.test/a\" rel=\"nofollow noopener\"><span class=\"c-bold\">https://x.test/</span>a</a>"
    );
}

#[test]
fn hostile_plain_urls_stay_text_or_stay_escaped() {
    // Quotes and angle brackets end a URL: no attribute or tag can be made of one.
    assert_eq!(
        one(b"https://x.test/\"onmouseover=\"alert(1)"),
        "<a href=\"https://x.test/\" rel=\"nofollow noopener\">https://x.test/</a>&quot;onmouseover=&quot;alert(1)"
    );
    assert_eq!(
        one(b"http://x.test/<script>"),
        "<a href=\"http://x.test/\" rel=\"nofollow noopener\">http://x.test/</a>&lt;script&gt;"
    );
    for text in
        ["javascript:alert(1)", "data:text/html,x", "xhttp://x.test/", "https://", "file:///etc"]
    {
        assert_eq!(one(text.as_bytes()), text.replace('\'', "&#39;"), "{text}");
    }
    // Past `HREF_MAX_BYTES` a URL is text, as an OSC 8 link would be.
    let long = format!("https://x.test/{}", "&".repeat(HREF_MAX_BYTES / 5));
    assert!(!one(long.as_bytes()).contains("<a "));
}

#[test]
fn plain_urls_keep_to_the_bounds_of_links() {
    // As many URLs as a line may hold links, and more: the rest are text.
    let urls: Vec<String> =
        (0..line::LINKS_MAX_PER_LINE + 10).map(|i| format!("https://x.test/{i}")).collect();
    let out = one(urls.join(" ").as_bytes());
    assert_eq!(out.matches("<a href=").count(), line::LINKS_MAX_PER_LINE);
    // A URL inside an OSC 8 link is that link's text, not a second link.
    assert_eq!(
        one(b"\x1b]8;;https://a.test/\x07https://b.test/\x1b]8;;\x07"),
        "<a href=\"https://a.test/\" rel=\"nofollow noopener\">https://b.test/</a>"
    );
    // Many short URLs: the line's HTML stays within its bound by dropping links.
    let dense = " http://a".repeat(2000);
    let lines = render(dense.as_bytes());
    assert!(lines[0].html.len() <= HTML_BYTES_PER_RAW_BYTE * dense.len());
}
