//! Where to cut a byte chunk so that no UTF-8 character is split across two chunks.
//!
//! The [`crate::Publisher`] holds back an incomplete character at the end of a chunk and
//! prepends it to the next chunk of the same stream. Every cut then falls on a boundary of the
//! lossy UTF-8 decoder, so decoding each chunk on its own with `String::from_utf8_lossy` and
//! concatenating gives exactly the lossy decoding of the whole output (what API.md §4 stores),
//! for valid and invalid UTF-8 alike.

/// The length of the longest prefix of `bytes` that does not end inside a character that the
/// following bytes could still complete. `bytes[len..]` (at most 3 bytes) is held back.
pub fn complete_prefix_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            // A continuation byte: keep looking for the lead byte.
            continue;
        }
        let width = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            // ASCII, or a byte that can never start a character: nothing to wait for.
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_only_incomplete_tails() {
        let euro = "€".as_bytes(); // E2 82 AC
        assert_eq!(complete_prefix_len(b"abc"), 3);
        assert_eq!(complete_prefix_len(euro), 3);
        assert_eq!(complete_prefix_len(&euro[..2]), 0);
        assert_eq!(complete_prefix_len(&[b'a', euro[0]]), 1);
        assert_eq!(complete_prefix_len(&[0xF0, 0x9F, 0x98]), 0);
        assert_eq!(complete_prefix_len(&[0xF0, 0x9F, 0x98, 0x80]), 4);
        assert_eq!(complete_prefix_len(&[0x80, 0x80, 0x80, 0x80]), 4);
        assert_eq!(complete_prefix_len(&[0xFF]), 1);
        assert_eq!(complete_prefix_len(b""), 0);
    }
}
