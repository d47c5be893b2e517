//! Test helper: a namespace-resolving canonical view of XML content, built with quick-xml
//! independently of the crate's own reader.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// One canonical token of element content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// Start of element `{ns}local` with its sorted non-xmlns attributes `({ns}local, value)`.
    Start(String, Vec<(String, String)>),
    /// End of element.
    End,
    /// Merged character data.
    Text(String),
}

fn ns_of(r: ResolveResult<'_>) -> Result<String, String> {
    match r {
        // quick-xml binds the raw attribute text; unescape it to get the namespace URI.
        ResolveResult::Bound(ns) => quick_xml::escape::unescape(ns.0)
            .map(|u| u.into_owned())
            .map_err(|e| e.to_string()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(format!("unknown prefix {p}")),
    }
}

fn push_text(toks: &mut Vec<Tok>, s: &str) {
    if let Some(Tok::Text(t)) = toks.last_mut() {
        t.push_str(s);
    } else if !s.is_empty() {
        toks.push(Tok::Text(s.to_owned()));
    }
}

/// Parses `doc` fully (it must be well-formed and namespace-valid) and returns the canonical
/// content of every element named `{ns}local`, in document order.
pub fn contents_of(doc: &str, ns: &str, local: &str) -> Result<Vec<Vec<Tok>>, String> {
    let mut reader = NsReader::from_str(doc);
    let mut found: Vec<Vec<Tok>> = Vec::new();
    // Depth inside the current target element (0 = not inside one).
    let mut inside = 0usize;
    let mut open = 0usize;
    loop {
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let (r, l) = reader.resolver().resolve_element(e.name());
                let ens = ns_of(r)?;
                let name = format!("{{{ens}}}{}", l.as_ref());
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (r, l) = reader.resolver().resolve_attribute(a.key);
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| e.to_string())?;
                    attrs.push((format!("{{{}}}{}", ns_of(r)?, l.as_ref()), v.into_owned()));
                }
                attrs.sort();
                if inside > 0 {
                    let cur = found.last_mut().ok_or("no target")?;
                    cur.push(Tok::Start(name, attrs));
                    if empty {
                        cur.push(Tok::End);
                    } else {
                        inside += 1;
                    }
                } else if ens == ns && l.as_ref() == local {
                    found.push(Vec::new());
                    if !empty {
                        inside = 1;
                    }
                }
                if !empty {
                    open += 1;
                }
            }
            Event::End(_) => {
                open = open.checked_sub(1).ok_or("unbalanced")?;
                if inside > 1 {
                    found.last_mut().ok_or("no target")?.push(Tok::End);
                }
                inside = inside.saturating_sub(1);
            }
            Event::Text(t) if inside > 0 => {
                push_text(found.last_mut().ok_or("no target")?, &t.xml10_content());
            }
            Event::CData(c) if inside > 0 => {
                push_text(found.last_mut().ok_or("no target")?, &c.xml10_content());
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c,
                    None => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(format!("unknown entity {other}")),
                    },
                };
                if inside > 0 {
                    push_text(
                        found.last_mut().ok_or("no target")?,
                        c.encode_utf8(&mut [0; 4]),
                    );
                }
            }
            Event::DocType(_) => return Err("doctype".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if open != 0 {
        return Err("unclosed elements".into());
    }
    Ok(found)
}
