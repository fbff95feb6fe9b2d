//! The subject of an X.509 certificate, for client-certificate
//! authentication: just enough DER to walk from the certificate to its
//! subject name and read the attribute types and string values there.
//! The certificate has already been verified by rustls against
//! `tls_client_ca` when this runs; the reader still checks every length
//! against the bytes it has and gives `None` rather than panic on
//! anything it does not expect.
//!
//! A [`Subject`] is a list of `TYPE=value` attributes (`CN=ops`,
//! `O=Example`); a key's `cert_subject` matches a certificate when both
//! hold the same attributes, whatever their order (types compare without
//! case, values exactly).

use std::fmt;

/// Attribute types by OID, with the short names RFC 4514 uses.
const NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

/// A distinguished name as `(TYPE, value)` pairs, in certificate order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(pub Vec<(String, String)>);

impl Subject {
    /// Parses `CN=ops, O=Example` (`,` or `+` between attributes, `\`
    /// escapes the next character; types are names from RFC 4514 or
    /// dotted OIDs, any case).
    pub fn parse(text: &str) -> Result<Subject, String> {
        let mut attrs = Vec::new();
        let mut part = String::new();
        let mut chars = text.chars();
        let mut parts = Vec::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) => {
                        part.push('\\');
                        part.push(n);
                    }
                    None => return Err(format!("{text:?} ends with a lone \\")),
                },
                ',' | '+' => parts.push(std::mem::take(&mut part)),
                c => part.push(c),
            }
        }
        parts.push(part);
        for p in parts {
            let (k, v) = split_unescaped_eq(&p)
                .ok_or_else(|| format!("{:?} in {text:?} is not TYPE=value", p.trim()))?;
            let k = k.trim().to_ascii_uppercase();
            let v = unescape(v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(format!("{:?} in {text:?} is not TYPE=value", p.trim()));
            }
            let known = NAMES.iter().any(|(oid, name)| *name == k || *oid == k);
            if !known && !k.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!(
                    "unknown attribute type {k:?} in {text:?} (CN, O, OU, C, ST, L, DC, UID, \
                     EMAILADDRESS, SERIALNUMBER, STREET or a dotted OID)"
                ));
            }
            attrs.push((canonical_type(&k), v));
        }
        Ok(Subject(attrs))
    }

    /// Whether both name the same attributes, in any order.
    pub fn matches(&self, other: &Subject) -> bool {
        let sorted = |s: &Subject| {
            let mut v: Vec<(String, String)> =
                s.0.iter()
                    .map(|(k, v)| (canonical_type(k), v.clone()))
                    .collect();
            v.sort();
            v
        };
        sorted(self) == sorted(other)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=")?;
            for c in v.chars() {
                if matches!(c, ',' | '+' | '=' | '\\') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The short name of a type given as a name or an OID (OIDs without a
/// name stay dotted).
fn canonical_type(k: &str) -> String {
    let up = k.to_ascii_uppercase();
    NAMES
        .iter()
        .find(|(oid, name)| *oid == up || *name == up)
        .map_or(up, |(_, name)| (*name).to_string())
}

fn split_unescaped_eq(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '=' if !escaped => return Some((&s[..i], &s[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject of a DER certificate.
pub fn subject_of(cert_der: &[u8]) -> Option<Subject> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] version, if present.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, name, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut attrs = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, next) = tlv(rdns)?;
        if tag != SET {
            return None;
        }
        let mut atvs = set;
        while !atvs.is_empty() {
            let (tag, atv, more) = tlv(atvs)?;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(atv)?;
            if tag != 0x06 {
                return None;
            }
            let (vtag, value, _) = tlv(value)?;
            attrs.push((canonical_type(&oid_text(oid)?), string_value(vtag, value)?));
            atvs = more;
        }
        rdns = next;
    }
    Some(Subject(attrs))
}

/// A DER OID in dotted form.
fn oid_text(der: &[u8]) -> Option<String> {
    let (&first, rest) = der.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), 0];
    parts[1] = u64::from(first) - parts[0] * 40;
    let mut acc: u64 = 0;
    for &b in rest {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
    }
    Some(
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The directory string types a subject holds.
fn string_value(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, TeletexString, IA5String.
        0x0c | 0x13 | 0x14 | 0x16 => Some(String::from_utf8_lossy(v).into_owned()),
        // BMPString: UTF-16 big-endian.
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_of_a_real_certificate_is_read_in_order() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
        dn.push(rcgen::DnType::CommonName, "ops");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = subject_of(cert.der()).expect("subject");
        assert_eq!(
            s.0,
            [
                ("O".to_string(), "Example, Inc.".to_string()),
                ("CN".to_string(), "ops".to_string())
            ]
        );
        assert_eq!(s.to_string(), "O=Example\\, Inc.,CN=ops");
        assert!(Subject::parse("cn = ops, O=Example\\, Inc.")
            .unwrap()
            .matches(&s));
        assert!(Subject::parse("2.5.4.3=ops,O=Example\\, Inc.")
            .unwrap()
            .matches(&s));
        assert!(!Subject::parse("CN=ops").unwrap().matches(&s));
        assert!(!Subject::parse("CN=Ops,O=Example\\, Inc.")
            .unwrap()
            .matches(&s));
    }

    #[test]
    fn bad_subjects_and_truncated_certificates_are_refused_without_panic() {
        for bad in ["", "CN", "CN=", "=ops", "XX=ops", "CN=ops\\"] {
            assert!(Subject::parse(bad).is_err(), "{bad}");
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for n in 0..der.len().min(300) {
            let _ = subject_of(&der[..n]);
        }
        assert!(subject_of(&[0xff; 8]).is_none());
    }
}
