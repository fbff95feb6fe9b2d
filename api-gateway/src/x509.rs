//! The subject of an X.509 certificate, for client-certificate
//! authentication: just enough DER to walk from the certificate to its
//! subject name and read the attribute types and string values there.
//! The certificate has already been verified by rustls against
//! `tls_client_ca` when this runs; the reader still checks every length
//! against the bytes it has and gives `None` rather than panic on
//! anything it does not expect.
//!
//! A [`Subject`] keeps the name's structure: a list of relative
//! distinguished names (RDNs), each a set of `TYPE=value` attributes —
//! one, unless the RDN is multi-valued. In text, `,` separates RDNs and
//! `+` the attributes of one RDN (`CN=ops,O=Example` is two RDNs,
//! `CN=ops+O=Example` one). A key's `cert_subject` matches a certificate
//! when both hold the same RDNs, whatever the order of the RDNs and of
//! the attributes inside one (types compare without case, values
//! exactly); an attribute never matches across RDN boundaries, so a CA
//! that lets a client choose how its attributes are grouped does not let
//! it become another key.

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

/// One attribute: its type's short name (or dotted OID) and its value.
pub type Attribute = (String, String);

/// A distinguished name: its RDNs in certificate order, each the
/// attributes it holds, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(pub Vec<Vec<Attribute>>);

impl Subject {
    /// Parses `CN=ops, O=Example` (`,` between RDNs, `+` between the
    /// attributes of one RDN, `\\` escapes the next character; types are
    /// names from RFC 4514 or dotted OIDs, any case).
    pub fn parse(text: &str) -> Result<Subject, String> {
        // Each part with whether it begins a new RDN.
        let mut parts: Vec<(bool, String)> = vec![(true, String::new())];
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let last = parts.len() - 1;
            match c {
                '\\' => match chars.next() {
                    Some(n) => {
                        parts[last].1.push('\\');
                        parts[last].1.push(n);
                    }
                    None => return Err(format!("{text:?} ends with a lone \\")),
                },
                ',' => parts.push((true, String::new())),
                '+' => parts.push((false, String::new())),
                c => parts[last].1.push(c),
            }
        }
        let mut rdns: Vec<Vec<Attribute>> = Vec::new();
        for (starts_rdn, p) in parts {
            let attr = attribute(&p, text)?;
            match rdns.last_mut() {
                Some(rdn) if !starts_rdn => rdn.push(attr),
                _ => rdns.push(vec![attr]),
            }
        }
        Ok(Subject(rdns))
    }

    /// Whether both name the same RDNs, each with the same attributes, in
    /// any order of RDNs and of attributes within one.
    pub fn matches(&self, other: &Subject) -> bool {
        let canonical = |s: &Subject| {
            let mut rdns: Vec<Vec<Attribute>> =
                s.0.iter()
                    .map(|rdn| {
                        let mut attrs: Vec<Attribute> = rdn
                            .iter()
                            .map(|(k, v)| (canonical_type(k), v.clone()))
                            .collect();
                        attrs.sort();
                        attrs
                    })
                    .collect();
            rdns.sort();
            rdns
        };
        canonical(self) == canonical(other)
    }
}

/// One `TYPE=value` of `text`, checked.
fn attribute(part: &str, text: &str) -> Result<Attribute, String> {
    let (k, v) = split_unescaped_eq(part)
        .ok_or_else(|| format!("{:?} in {text:?} is not TYPE=value", part.trim()))?;
    let k = k.trim().to_ascii_uppercase();
    let v = unescape(v.trim());
    if k.is_empty() || v.is_empty() {
        return Err(format!("{:?} in {text:?} is not TYPE=value", part.trim()));
    }
    let known = NAMES.iter().any(|(oid, name)| *name == k || *oid == k);
    if !known && !k.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "unknown attribute type {k:?} in {text:?} (CN, O, OU, C, ST, L, DC, UID, \
             EMAILADDRESS, SERIALNUMBER, STREET or a dotted OID)"
        ));
    }
    Ok((canonical_type(&k), v))
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, (k, v)) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{k}=")?;
                for c in v.chars() {
                    if matches!(c, ',' | '+' | '=' | '\\') {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
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
    let mut out = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, next) = tlv(rdns)?;
        // An RDN is a SET of at least one attribute.
        if tag != SET || set.is_empty() {
            return None;
        }
        let mut attrs = Vec::new();
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
        out.push(attrs);
        rdns = next;
    }
    Some(Subject(out))
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
                vec![("O".to_string(), "Example, Inc.".to_string())],
                vec![("CN".to_string(), "ops".to_string())]
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

    fn attr(k: &str, v: &str) -> Attribute {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn plus_joins_attributes_into_one_rdn_and_comma_starts_the_next() {
        let one = Subject::parse("CN=ops+O=Example").unwrap();
        assert_eq!(one.0, [vec![attr("CN", "ops"), attr("O", "Example")]]);
        assert_eq!(one.to_string(), "CN=ops+O=Example");
        let two = Subject::parse("CN=ops, O=Example").unwrap();
        assert_eq!(two.0, [vec![attr("CN", "ops")], vec![attr("O", "Example")]]);
        assert_eq!(two.to_string(), "CN=ops,O=Example");
        let mixed = Subject::parse("cn=a + uid=b, 2.5.4.10=c\\+d").unwrap();
        assert_eq!(
            mixed.0,
            [
                vec![attr("CN", "a"), attr("UID", "b")],
                vec![attr("O", "c+d")]
            ]
        );
        assert_eq!(mixed.to_string(), "CN=a+UID=b,O=c\\+d");
        assert_eq!(Subject::parse(&mixed.to_string()).unwrap(), mixed);
    }

    #[test]
    fn subjects_match_only_with_the_same_rdns() {
        let m = |a: &str, b: &str| {
            Subject::parse(a)
                .unwrap()
                .matches(&Subject::parse(b).unwrap())
        };
        // The same RDNs, in any order, and attributes in any order inside.
        assert!(m("CN=ops,O=Example", "O=Example,CN=ops"));
        assert!(m("CN=ops+O=Example", "O=Example+CN=ops"));
        assert!(m("CN=a+O=b,OU=c", "OU=c,O=b+CN=a"));
        // The same attributes grouped otherwise are another name.
        assert!(!m("CN=ops+O=Example", "CN=ops,O=Example"));
        assert!(!m("CN=ops,O=Example", "CN=ops+O=Example"));
        assert!(!m("CN=a+O=b,OU=c", "CN=a,O=b+OU=c"));
        assert!(!m("CN=a+O=b,OU=c", "CN=a,O=b,OU=c"));
        // A repeated RDN counts.
        assert!(!m("CN=a,CN=a", "CN=a"));
        assert!(!m("CN=a+CN=a", "CN=a"));
    }

    /// One short DER element.
    fn wrap(tag: u8, body: Vec<u8>) -> Vec<u8> {
        let mut v = vec![tag, u8::try_from(body.len()).expect("short")];
        v.extend(body);
        v
    }

    /// A DER name of the given RDNs, each a list of (OID body, value).
    fn name_der(rdns: &[&[(&[u8], &str)]]) -> Vec<u8> {
        let mut name = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, value) in *rdn {
                let mut atv = wrap(0x06, oid.to_vec());
                atv.extend(wrap(0x0c, value.as_bytes().to_vec()));
                set.extend(wrap(0x30, atv));
            }
            name.extend(wrap(0x31, set));
        }
        wrap(0x30, name)
    }

    /// A certificate shell around `subject`: the fields before it are
    /// empty elements, which is all [`subject_of`] walks through.
    fn cert_der(subject: Vec<u8>) -> Vec<u8> {
        let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02];
        for _ in 0..4 {
            tbs.extend([0x30, 0x00]);
        }
        tbs.extend(subject);
        wrap(0x30, wrap(0x30, tbs))
    }

    #[test]
    fn a_multi_valued_rdn_is_read_as_one_rdn() {
        const CN: &[u8] = &[0x55, 0x04, 0x03];
        const O: &[u8] = &[0x55, 0x04, 0x0a];
        let one = subject_of(&cert_der(name_der(&[&[(CN, "ops"), (O, "Example")]]))).unwrap();
        assert_eq!(one.0, [vec![attr("CN", "ops"), attr("O", "Example")]]);
        let two = subject_of(&cert_der(name_der(&[&[(CN, "ops")], &[(O, "Example")]]))).unwrap();
        assert_eq!(two.0, [vec![attr("CN", "ops")], vec![attr("O", "Example")]]);
        assert!(!one.matches(&two));
        assert!(Subject::parse("O=Example+CN=ops").unwrap().matches(&one));
        assert!(Subject::parse("O=Example,CN=ops").unwrap().matches(&two));
        // An empty RDN is not a name.
        assert!(subject_of(&cert_der(name_der(&[&[(CN, "ops")], &[]]))).is_none());
    }

    #[test]
    fn bad_subjects_and_truncated_certificates_are_refused_without_panic() {
        for bad in [
            "",
            "CN",
            "CN=",
            "=ops",
            "XX=ops",
            "CN=ops\\",
            "CN=a+",
            "+CN=a",
            "CN=a,,O=b",
        ] {
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
