//! Fixed-width hexadecimal numbers: read in either case, written lower-case.

/// The value of each byte as a hex digit; `NOT_HEX` for bytes that are not one.
static DIGIT: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const NOT_HEX: u8 = 0x10;

/// Parses a fixed-width hex field. `None` if any byte is not a hex digit.
#[inline]
pub(crate) fn parse(field: &[u8]) -> Option<u32> {
    debug_assert!(field.len() <= 8);
    // Branch-free: every header has an 8-digit size, read on every message.
    let mut value = 0u32;
    let mut seen = 0u8;
    for &b in field {
        let digit = DIGIT[usize::from(b)];
        seen |= digit;
        value = (value << 4) | u32::from(digit & 0xf);
    }
    (seen & NOT_HEX == 0).then_some(value)
}

/// An eight-digit hex field, all digits at once (every header has one, read on every
/// message). `None` if any byte is not a hex digit.
#[inline]
pub(crate) fn parse8(field: &[u8; 8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The first digit in the top byte.
    let x = u64::from_be_bytes(*field);
    if x & HIGH != 0 {
        return None;
    }
    // The high bit of each byte that is in `lo..=hi` (for bytes below 0x80, so that the
    // additions carry into no other byte).
    let within = |v: u64, lo: u64, hi: u64| (v + (0x80 - lo) * ONES) & !(v + (0x7f - hi) * ONES);
    let digits = within(x, b'0'.into(), b'9'.into());
    // Setting 0x20 makes `A`..`F` into `a`..`f`, and nothing else into them.
    let letters = within(x | (0x20 * ONES), b'a'.into(), b'f'.into());
    if (digits | letters) & HIGH != HIGH {
        return None;
    }
    // Each byte's value, then pairs, quads and halves joined.
    let nibbles = (x & (0x0f * ONES)) + 9 * ((letters & HIGH) >> 7);
    let x = (nibbles | (nibbles >> 4)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    Some(((x | (x >> 16)) & 0xffff_ffff) as u32)
}

/// `value` as eight lower-case hex digits, all at once: each nibble is spread into a
/// byte of its own, then turned into its digit (every header has an 8-digit field).
#[inline]
pub(crate) fn eight_digits(value: u32) -> [u8; 8] {
    let x = u64::from(value);
    let x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    let x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    let x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // 1 in each byte whose nibble is 10 or more: those become `a`..`f`, not `:`..`?`.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// Writes `value` as exactly `dst.len()` lower-case hex digits. The caller makes sure it fits.
#[inline]
pub(crate) fn write(dst: &mut [u8], mut value: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in dst.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
    debug_assert_eq!(value, 0, "value does not fit its hex field");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_cases_and_rejects_others() {
        assert_eq!(parse(b"00ff"), Some(255));
        assert_eq!(parse(b"00FF"), Some(255));
        assert_eq!(parse(b"fFfFfFfF"), Some(u32::MAX));
        assert_eq!(parse(b"0g"), None);
        assert_eq!(parse(b" 1"), None);
        assert_eq!(parse(b"+1"), None);
        assert_eq!(parse(b"0123456789abcdef"[..8].as_ref()), Some(0x0123_4567));
        for b in 0..=255u8 {
            assert_eq!(parse(&[b]).is_some(), b.is_ascii_hexdigit(), "byte {b}");
        }
    }

    #[test]
    fn eight_digits_are_read_at_once_as_one_by_one() {
        let fields: [&[u8; 8]; 5] = [
            b"00000000",
            b"ffffffff",
            b"0123abcd",
            b"89ABcdEF",
            b"7fFf0a9B",
        ];
        for field in fields {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut f = *field;
                    f[at] = b;
                    assert_eq!(parse8(&f), parse(&f), "{:?}", String::from_utf8_lossy(&f));
                }
            }
        }
        for value in [0, 1, 0xdead_beef, u32::MAX, 0x0f0f_0f0f, 0xa0b0_c0d0] {
            assert_eq!(parse8(&eight_digits(value)), Some(value));
        }
    }

    #[test]
    fn eight_digits_at_once_are_the_digits_one_by_one() {
        let mut values = vec![0, 1, 9, 10, 15, 16, 0xffff_ffff, 0x0123_4567, 0x89ab_cdef];
        values.extend((0..32).map(|shift| 1u32 << shift));
        values.extend((0..1000u32).map(|i| i.wrapping_mul(0x9e37_79b9)));
        for value in values {
            let mut one_by_one = [0u8; 8];
            write(&mut one_by_one, value);
            assert_eq!(eight_digits(value), one_by_one, "{value:#x}");
        }
    }

    #[test]
    fn writes_fixed_width_lower_case() {
        let mut buf = [0u8; 8];
        write(&mut buf, 0x1b);
        assert_eq!(&buf, b"0000001b");
        let mut buf = [0u8; 3];
        write(&mut buf, 0xfff);
        assert_eq!(&buf, b"fff");
    }
}
