//! Streaming secret masking: every secret value becomes `***`, also when a value arrives split
//! across several writes.

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::{Bytes, BytesMut};

/// What a masked secret is replaced with.
pub const MASK: &[u8] = b"***";

/// Masks one output stream. Bytes that could be the start of a secret are held back until the
/// next chunk shows whether they are; at most the longest secret's length minus one is held.
pub struct Masker {
    matcher: Option<AhoCorasick>,
    secrets: Vec<Vec<u8>>,
    pending: BytesMut,
}

impl Masker {
    /// A masker for these values; empty values are ignored.
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> =
            values.into_iter().map(|v| v.as_ref().to_vec()).filter(|v| !v.is_empty()).collect();
        secrets.sort();
        secrets.dedup();
        let matcher = (!secrets.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&secrets)
                .expect("secret patterns are plain bytes")
        });
        Masker { matcher, secrets, pending: BytesMut::new() }
    }

    /// Masks the next chunk; returns what can be sent now (possibly nothing).
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        let Some(matcher) = &self.matcher else {
            return Bytes::copy_from_slice(chunk);
        };
        self.pending.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.pending);
        let cut = buf.len() - held_suffix(&self.secrets, &buf);
        let mut out = BytesMut::with_capacity(buf.len());
        let mut pos = 0;
        for found in matcher.find_iter(&buf[..]) {
            // A match that starts in the held tail might be the start of a longer secret.
            if found.start() >= cut {
                break;
            }
            out.extend_from_slice(&buf[pos..found.start()]);
            out.extend_from_slice(MASK);
            pos = found.end();
        }
        if pos < cut {
            out.extend_from_slice(&buf[pos..cut]);
        }
        self.pending.extend_from_slice(&buf[pos.max(cut)..]);
        out.freeze()
    }

    /// Masks and returns whatever is held back; call at the end of the stream.
    pub fn finish(&mut self) -> Bytes {
        let buf = std::mem::take(&mut self.pending);
        match &self.matcher {
            Some(matcher) => {
                let mut out = Vec::with_capacity(buf.len());
                matcher.replace_all_with_bytes(&buf, &mut out, |_, _, out| {
                    out.extend_from_slice(MASK);
                    true
                });
                out.into()
            }
            None => buf.freeze(),
        }
    }
}

/// The length of the longest suffix of `buf` that is a proper prefix of some secret.
fn held_suffix(secrets: &[Vec<u8>], buf: &[u8]) -> usize {
    let mut longest = 0;
    for secret in secrets {
        let max = (secret.len() - 1).min(buf.len());
        for len in (longest + 1..=max).rev() {
            if buf[buf.len() - len..] == secret[..len] {
                longest = len;
                break;
            }
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mask_in_pieces(secrets: &[&str], input: &[u8], piece: usize) -> Vec<u8> {
        let mut masker = Masker::new(secrets);
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            out.extend_from_slice(&masker.push(chunk));
        }
        out.extend_from_slice(&masker.finish());
        out
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
        assert_eq!(mask_in_pieces(&["ab", "abcd"], b"xabcdx", 1), b"x***x");
        assert_eq!(mask_in_pieces(&["ab", "abcd"], b"xab", 1), b"x***");
    }

    #[test]
    fn holds_back_no_more_than_a_possible_prefix() {
        let mut masker = Masker::new(["secret"]);
        assert_eq!(&masker.push(b"hello se")[..], b"hello ");
        assert_eq!(&masker.push(b"x")[..], b"sex");
    }

    #[test]
    fn without_secrets_bytes_pass_unchanged() {
        let mut masker = Masker::new(Vec::<String>::new());
        assert_eq!(&masker.push(b"\x1b[31mred\xff")[..], b"\x1b[31mred\xff");
    }

    proptest! {
        /// However the output is split, no secret value survives and nothing else changes.
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
}
