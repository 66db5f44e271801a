//! Fixed-width hexadecimal numbers: read in either case, written lower-case.

/// Parses a fixed-width hex field. `None` if any byte is not a hex digit.
#[inline]
pub(crate) fn parse(field: &[u8]) -> Option<u32> {
    debug_assert!(field.len() <= 8);
    let mut value = 0u32;
    for &b in field {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u32::from(digit);
    }
    Some(value)
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
