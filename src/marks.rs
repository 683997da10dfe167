//! hubtriage's own marks on a finding: who wrote the note, the
//! UserDefinedFields it sets, and on a V2 finding (which has no such fields)
//! the same fields at the start of its comment. A leaf: the parsers (which
//! read the marks back) and the record layer (which writes them) both use it.

/// `Note.UpdatedBy` on every note hubtriage writes.
pub const UPDATED_BY: &str = "hubtriage";
/// The longest note BatchUpdateFindings takes (V2's Comment: 1 to 512 characters too).
pub const MAX_NOTE_CHARS: usize = 512;
/// UserDefinedFields hubtriage writes (on V2 findings, in its comment).
pub const FIELD_PREFIX: &str = "hubtriage:";
pub const FIELD_ACTION: &str = "hubtriage:action";
pub const FIELD_RULE: &str = "hubtriage:rule";
pub const FIELD_EXPIRES: &str = "hubtriage:expires";
pub const FIELD_TICKET: &str = "hubtriage:ticket";
pub const FIELD_REMEDIATION: &str = "hubtriage:remediation";
pub const FIELD_REMEDIATION_STARTED: &str = "hubtriage:remediation-started";

/// What starts every comment hubtriage writes on a V2 finding.
const MARKER: &str = "hubtriage[";

/// The status hubtriage set, kept in its V2 comment (echo recognition).
pub const FIELD_STATUS: &str = "hubtriage:status";

/// Cuts `text` to at most `max` characters, marking the cut with "…".
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The fields hubtriage keeps at the start of its comment on a V2 finding.
pub mod comment {
    use std::collections::BTreeMap;

    use super::{truncate, FIELD_PREFIX, MARKER};

    /// Characters a value keeps as they are; others are written `%XX`.
    fn plain_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || "._:/@+-".contains(c)
    }

    /// `hubtriage[k=v;…] text`, from fields named `hubtriage:<k>`, cut to `max` characters.
    pub fn write(fields: &BTreeMap<String, String>, text: &str, max: usize) -> String {
        let mut parts = Vec::new();
        for (key, value) in fields {
            let key = key.strip_prefix(FIELD_PREFIX).unwrap_or(key);
            let mut v = String::new();
            for c in value.chars() {
                if plain_char(c) {
                    v.push(c);
                } else {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        v.push_str(&format!("%{b:02X}"));
                    }
                }
            }
            parts.push(format!("{key}={v}"));
        }
        let comment = format!("{MARKER}{}] {text}", parts.join(";"));
        truncate(&comment, max)
    }

    /// The fields of a comment hubtriage wrote (named `hubtriage:<k>`);
    /// `None` for anyone else's comment.
    pub fn fields(comment: &str) -> Option<BTreeMap<String, String>> {
        let rest = comment.strip_prefix(MARKER)?;
        let (inside, _) = rest.split_once(']')?;
        let mut fields = BTreeMap::new();
        for part in inside.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=')?;
            fields.insert(format!("{FIELD_PREFIX}{key}"), decode(value)?);
        }
        Some(fields)
    }

    fn decode(value: &str) -> Option<String> {
        let bytes = value.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = value.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }
}
