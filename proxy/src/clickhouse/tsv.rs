//! ClickHouse's TabSeparated escaping: fields split on raw tabs (a tab inside a value is `\t`),
//! `\N` alone is NULL, and a backslash escapes the next byte.

/// One field: `None` for NULL (`\N`), else the unescaped bytes.
pub fn unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'a') => out.push(0x07),
            Some(b'v') => out.push(0x0b),
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    Some(out)
}

/// The raw fields of a line (without its newline).
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b'\t')
}

/// ClickHouse's exception text as it appears in a response body, also after rows already sent
/// (18.16 writes it where the next row would be): `Code: N, e.displayText() = DB::Exception: …`.
pub fn exception(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("Code: ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && rest[digits..].starts_with(", ") && text.contains("Exception"))
        .then(|| text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_null() {
        assert_eq!(unescape(b"\\N"), None);
        assert_eq!(unescape(b"a\\tb\\\\c\\n"), Some(b"a\tb\\c\n".to_vec()));
        assert_eq!(unescape(b"ab\\0\\0"), Some(b"ab\0\0".to_vec()));
        assert_eq!(unescape(b"\\'x\\'"), Some(b"'x'".to_vec()));
        assert_eq!(unescape(b"\\"), Some(b"\\".to_vec()));
        assert_eq!(fields(b"1\t\\N\tx").count(), 3);
    }

    #[test]
    fn exception_lines() {
        let line = b"Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception";
        let m = exception(line);
        assert!(m.as_deref().is_some_and(|m| m.contains("throwIf")));
        assert_eq!(exception(b"Code: x"), None);
        assert_eq!(exception(b"0\t851967"), None);
    }
}
