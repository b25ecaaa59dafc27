//! The masker: whole values, values split across writes and streams, values interrupted by
//! escapes, and what the renderer then shows of them.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Masks `input` fed `piece` bytes at a time to one stream; returns all the output.
fn mask_in_pieces(secrets: &[&str], input: &[u8], piece: usize) -> Vec<u8> {
    let pieces: Vec<(Stream, &[u8])> =
        input.chunks(piece.max(1)).map(|chunk| (Stream::Out, chunk)).collect();
    joined(&mask_streams(secrets, &pieces))
}

/// Masks chunks of several streams in order; returns what left, tagged.
fn mask_streams(secrets: &[&str], chunks: &[(Stream, &[u8])]) -> Vec<(Stream, Vec<u8>)> {
    let mut masker = Masker::new(secrets);
    let mut out = Vec::new();
    for &(stream, chunk) in chunks {
        out.extend(masker.push(stream, chunk));
    }
    out.extend(masker.finish());
    out.into_iter().map(|(s, b)| (s, b.to_vec())).collect()
}

fn joined(out: &[(Stream, Vec<u8>)]) -> Vec<u8> {
    out.iter().flat_map(|(_, b)| b.clone()).collect()
}

/// The text a reader sees of a log: the renderer's lines without markup.
fn rendered_text(log: &[u8]) -> String {
    let mut renderer = crate::render::Renderer::new();
    let mut lines = renderer.push(log);
    lines.extend(renderer.finish());
    let mut text = String::new();
    for line in lines {
        let mut in_tag = false;
        for c in line.html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.push('\n');
    }
    text
}

#[test]
fn masks_whole_values() {
    let out = mask_in_pieces(&["hunter2"], b"token=hunter2; again hunter2\n", 1000);
    assert_eq!(out, b"token=***; again ***\n");
}

#[test]
fn masks_values_split_one_byte_per_write() {
    let out = mask_in_pieces(&["s3cr3t", "other"], b"a s3cr3t b other c s3cr3", 1);
    assert_eq!(out, b"a *** b *** c s3cr3");
}

#[test]
fn a_short_secret_inside_a_longer_one_does_not_leak_the_longer() {
    assert_eq!(mask_in_pieces(&["abcd", "abcdefgh"], b"xabcdefghx", 1), b"x***x");
    assert_eq!(mask_in_pieces(&["abcd", "abcdefgh"], b"xabcd", 1), b"x***");
}

#[test]
fn holds_back_no_more_than_a_possible_prefix() {
    fn sent(out: Vec<((), Bytes)>) -> Vec<u8> {
        out.into_iter().flat_map(|(_, b)| b.to_vec()).collect()
    }
    let mut masker = Masker::new(["secret"]);
    assert_eq!(sent(masker.push((), b"hello se")), b"hello ");
    assert_eq!(sent(masker.push((), b"x")), b"sex");
    assert_eq!(sent(masker.push((), b"\x1b[1mse")), b"\x1b[1m");
    assert_eq!(sent(masker.push((), b"\x1b[0mc")), b"");
    assert_eq!(sent(masker.push((), b"!")), b"se\x1b[0mc!");
}

#[test]
fn without_secrets_bytes_pass_unchanged() {
    let mut masker = Masker::new(Vec::<String>::new());
    let out = masker.push(Stream::Err, b"\x1b[31mred\xff");
    assert_eq!(out, [(Stream::Err, Bytes::from_static(b"\x1b[31mred\xff"))]);
}

#[test]
fn escapes_inside_a_value_are_masked_with_it() {
    let cases: [(&[u8], &[u8]); 9] = [
        (b"[\x1b[1mhun\x1b[0mter2]", b"[\x1b[1m***]"),
        (b"[hun\x1b[Kter2]", b"[***]"),
        (b"[hu\x1b]8;;https://x.test/\x1b\\nter2\x1b]8;;\x1b\\]", b"[***\x1b]8;;\x1b\\]"),
        (b"[hun\x1b]0;title\x07ter2]", b"[***]"),
        (b"[hun\x1b(Bter2]", b"[***]"),
        (b"[hun\x1bP1$r\x1b\\ter2]", b"[***]"),
        (b"[hun\x1b[38;2;1;2;3mt\x1b[0me\x1b[1mr2]", b"[***]"),
        (b"[hun\x00\x07\x7fter2]", b"[***]"),
        (b"[\x1b[31mhunter2\x1b[0m]", b"[\x1b[31m***\x1b[0m]"),
    ];
    for (input, want) in cases {
        for piece in [1, 2, 5, input.len()] {
            let out = mask_in_pieces(&["hunter2"], input, piece);
            assert_eq!(out, want, "{} in pieces of {piece}", input.escape_ascii());
        }
    }
}

/// Joins neighbours of one stream, as they would read.
fn merged(out: Vec<(Stream, Vec<u8>)>) -> Vec<(Stream, Vec<u8>)> {
    let mut merged: Vec<(Stream, Vec<u8>)> = Vec::new();
    for (stream, bytes) in out {
        match merged.last_mut() {
            Some((last, joined)) if *last == stream => joined.extend(bytes),
            _ => merged.push((stream, bytes)),
        }
    }
    merged
}

#[test]
fn a_value_split_across_stdout_and_stderr_is_masked() {
    let chunks: [(Stream, &[u8]); 3] =
        [(Stream::Out, b"a hun"), (Stream::Err, b"te"), (Stream::Out, b"r2 b\n")];
    let out = merged(mask_streams(&["hunter2"], &chunks));
    assert_eq!(out, [(Stream::Out, b"a *** b\n".to_vec())]);
    // Bytes that are not a secret keep their stream.
    let chunks: [(Stream, &[u8]); 2] = [(Stream::Out, b"a hun"), (Stream::Err, b"gry\n")];
    let out = merged(mask_streams(&["hunter2"], &chunks));
    assert_eq!(out, [(Stream::Out, b"a hun".to_vec()), (Stream::Err, b"gry\n".to_vec())]);
}

#[test]
fn what_is_held_back_is_bounded() {
    let mut masker = Masker::new(["hunter2"]);
    let mut out: Vec<u8> = Vec::new();
    out.extend(masker.push((), b"x hun").into_iter().flat_map(|(_, b)| b.to_vec()));
    for _ in 0..100 {
        out.extend(masker.push((), &b"\x1b[0m".repeat(1000)).into_iter().flat_map(|(_, b)| b));
        assert!(masker.held.len() <= HELD_MAX_BYTES + 4000);
    }
    out.extend(masker.push((), b"ter2 y").into_iter().flat_map(|(_, b)| b.to_vec()));
    out.extend(masker.finish().into_iter().flat_map(|(_, b)| b.to_vec()));
    let text = rendered_text(&out);
    assert!(text.starts_with("x ***"), "{text}");
    assert!(!text.contains("hun"), "{text}");
}

/// An escape sequence that does not move the cursor, as tools put them inside a value.
fn escape() -> impl Strategy<Value = Vec<u8>> {
    let escapes: Vec<&[u8]> = vec![
        b"\x1b[1m",
        b"\x1b[0m",
        b"\x1b[38;2;1;2;3m",
        b"\x1b[K",
        b"\x1b]8;;https://x.test/\x1b\\",
        b"\x1b]8;;\x07",
        b"\x1b]0;title\x07",
        b"\x1b(B",
        b"\x1b=",
        b"\x1bP1$r\x1b\\",
        b"\x1b_apc\x1b\\",
        b"\x07",
        b"\x00",
        b"\x7f",
    ];
    prop::sample::select(escapes).prop_map(<[u8]>::to_vec)
}

proptest! {
    /// However the output is split and interrupted by escapes, and whichever stream each piece
    /// goes to, the reader never sees the value.
    #[test]
    fn the_reader_never_sees_a_value(
        before in "[a-z \n]{0,20}",
        after in "[a-z \n]{0,20}",
        inserts in prop::collection::vec(prop::option::weighted(0.4, escape()), 12),
        cuts in prop::collection::vec(0usize..64, 0..8),
        streams in prop::collection::vec(any::<bool>(), 8),
    ) {
        let secret = "s3cr3t-v4lue";
        let mut input = before.clone().into_bytes();
        for (byte, insert) in secret.bytes().zip(&inserts) {
            input.push(byte);
            input.extend(insert.iter().flatten());
        }
        input.extend(after.bytes());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort();
        let mut chunks = Vec::new();
        let mut from = 0;
        for (i, &cut) in cuts.iter().chain([&input.len()]).enumerate() {
            let stream = if streams[i % streams.len()] { Stream::Out } else { Stream::Err };
            chunks.push((stream, &input[from..cut.max(from)]));
            from = cut.max(from);
        }
        let out = joined(&mask_streams(&[secret], &chunks));
        let text = rendered_text(&out);
        prop_assert!(!text.contains(secret), "{:?} shows {:?}", out.escape_ascii().to_string(), text);
        prop_assert!(text.contains("***"), "{text:?}");
        // Nothing but the value and what interrupted it went.
        let whole = joined(&mask_streams(&[secret], &[(Stream::Out, &input)]));
        prop_assert_eq!(&out, &whole);
    }

    /// However the output is split, no value survives and nothing else changes.
    #[test]
    fn splitting_never_changes_the_result(
        before in "[a-c]{0,20}", after in "[a-c]{0,20}", piece in 1usize..8
    ) {
        let secret = "abcab";
        let input = format!("{before}{secret}{after}");
        let whole = mask_in_pieces(&[secret], input.as_bytes(), input.len());
        let split = mask_in_pieces(&[secret], input.as_bytes(), piece);
        prop_assert_eq!(&whole, &split);
        prop_assert!(!String::from_utf8_lossy(&whole).contains(secret));
    }
}

#[test]
fn many_values_in_one_chunk_are_all_masked() {
    let input = "hunter2 \x1b[1mhun\x1b[0mter2\n".repeat(10_000);
    let out = mask_in_pieces(&["hunter2"], input.as_bytes(), 64 * 1024);
    assert_eq!(out, "*** \x1b[1m***\n".repeat(10_000).as_bytes());
}
