//! The pull reader over an answer's quick-xml events: [`Cursor`] moves element by element,
//! tells each element's local name and its `xsi:type` and `type` attributes (resolved by
//! namespace, never by prefix), reads text with entity references resolved, skips what is not
//! asked for unread, and reads the SOAP envelope down to its Body, a SOAP Fault there becoming
//! [`ParseError::Fault`]. It holds to the limits: no text node, tag or skipped element over
//! [`Limits::max_text_bytes`], no nesting deeper than [`MAX_DEPTH`].
//!
//! It owns reading XML, not which answers are read (see [`super`]) nor what values mean.

use std::borrow::Cow;
use std::io::{self, BufRead};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, QName, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::{Limits, Node};
use crate::vsphere::error::{Fault, ParseError};
use crate::vsphere::model::MoRef;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Marks the local names of elements in SOAP's own namespace in a [`Node`] (`soap:Body`).
const SOAP_PREFIX: &str = "soap:";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Nesting deeper than this is refused: no vSphere answer comes near it (a chain of 32
/// snapshots, vSphere's limit, is about 41 deep from the Envelope), and it bounds the stack
/// and memory a hostile or broken peer can make us spend.
const MAX_DEPTH: usize = 64;

/// The input of a [`Cursor`]: counts the bytes of the event being read, so that one text node
/// (or tag) over the limit fails the read instead of growing the buffer it is read into.
/// quick-xml has no such limit of its own; it appends an event's bytes to the buffer until
/// the event ends.
struct Capped<R> {
    inner: R,
    /// Bytes taken since the current event began.
    event_bytes: usize,
    limit: usize,
}

/// The error [`Capped`] fails a read with; told apart from I/O errors by its type.
#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("text node over the limit")
    }
}

impl std::error::Error for OverLimit {}

impl<R: BufRead> io::Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Capped<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.event_bytes > self.limit {
            return Err(io::Error::other(OverLimit));
        }
        // Never more than one byte past the limit, whatever the inner reader holds.
        let room = (self.limit - self.event_bytes).saturating_add(1);
        let available = self.inner.fill_buf()?;
        Ok(&available[..available.len().min(room)])
    }

    fn consume(&mut self, n: usize) {
        self.event_bytes = self.event_bytes.saturating_add(n);
        self.inner.consume(n);
    }
}

/// The element start the cursor is at: its local name, whether it is empty (`<val/>`),
/// and its `xsi:type` and unqualified `type` attributes, kept in reused buffers.
struct Start {
    name: [u8; NAME_MAX],
    /// The length of the name; longer names are kept as none, since no name the exporter
    /// looks for is that long.
    len: usize,
    empty: bool,
    /// In the SOAP envelope's namespace (only resolved for Envelope, Header, Body, Fault).
    soap: bool,
    /// The attributes as written, read only when asked for: most elements carry none the
    /// exporter needs, and parsing them was a fifth of the parse.
    attrs_raw: String,
    attrs_read: bool,
    xsi_type: String,
    has_xsi_type: bool,
    mo_type: String,
    has_mo_type: bool,
    /// The qualified name (`vim25:val`), which skipping an element needs.
    qname: String,
}

const NAME_MAX: usize = 48;

impl Start {
    fn new() -> Self {
        Start {
            name: [0; NAME_MAX],
            len: 0,
            empty: true,
            soap: false,
            attrs_raw: String::new(),
            attrs_read: true,
            xsi_type: String::new(),
            has_xsi_type: false,
            mo_type: String::new(),
            has_mo_type: false,
            qname: String::new(),
        }
    }

    fn name(&self) -> &[u8] {
        &self.name[..self.len]
    }

    /// A node for this start, without its content yet.
    fn node(&self) -> Node {
        let local = String::from_utf8_lossy(self.name());
        let name = if self.soap {
            format!("{SOAP_PREFIX}{local}")
        } else {
            local.into_owned()
        };
        Node {
            name,
            xsi_type: self.has_xsi_type.then(|| self.xsi_type.clone()),
            mo_type: self.has_mo_type.then(|| self.mo_type.clone()),
            ..Default::default()
        }
    }
}

/// A pull reader over a SOAP answer, element by element.
///
/// [`Cursor::next_child`] moves to the next child element of the element being read, whose
/// name and attributes the cursor then tells ([`Cursor::name`], [`Cursor::xsi_type`]); the
/// caller consumes that child with one of [`Cursor::enter`]
/// (then reads its children with `next_child` until `None`), [`Cursor::text`],
/// [`Cursor::moref`], [`Cursor::node`] or [`Cursor::skip`]. A child not consumed is skipped by
/// the next `next_child`.
pub struct Cursor<R> {
    reader: NsReader<Capped<R>>,
    buf: Vec<u8>,
    /// The text of the last [`Cursor::text`].
    text: String,
    /// Elements open.
    depth: usize,
    max_text: usize,
    /// The child returned by `next_child` and not consumed yet: whether it is empty.
    pending: Option<bool>,
    /// An empty element was entered: the next `next_child` is its end.
    entered_empty: bool,
    /// The last start read.
    start: Start,
}

impl<R: BufRead> Cursor<R> {
    pub fn new(input: R, limits: &Limits) -> Self {
        let capped = Capped {
            inner: input,
            event_bytes: 0,
            limit: limits.max_text_bytes,
        };
        let mut reader = NsReader::from_reader(capped);
        reader.config_mut().trim_text(false);
        Cursor {
            reader,
            buf: Vec::with_capacity(4096),
            text: String::new(),
            depth: 0,
            max_text: limits.max_text_bytes,
            pending: None,
            entered_empty: false,
            start: Start::new(),
        }
    }

    /// Moves to the next child element of the element being read; false at that element's
    /// end tag (or at the end of the document, outside every element).
    pub fn next_child(&mut self) -> Result<bool, ParseError> {
        if self.entered_empty {
            self.entered_empty = false;
            return Ok(false);
        }
        if let Some(false) = self.pending.take() {
            self.skip_open()?;
        }
        loop {
            let event = next_event(&mut self.reader, &mut self.buf)?;
            let (start, empty) = match event {
                Event::Start(start) => (start, false),
                Event::Empty(start) => (start, true),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(false);
                }
                Event::Eof if self.depth == 0 => return Ok(false),
                Event::Eof => return Err(ended_inside()),
                // Text between elements, comments, the declaration: nothing to read.
                _ => continue,
            };
            read_start(&self.reader, &start, empty, &mut self.start)?;
            if !empty {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(ParseError::Malformed("elements nested too deeply".into()));
                }
            }
            self.pending = Some(empty);
            return Ok(true);
        }
    }

    /// Starts reading the children of the child just returned by [`Self::next_child`].
    pub fn enter(&mut self) {
        if let Some(true) = self.pending.take() {
            self.entered_empty = true;
        }
    }

    /// Skips the child just returned by [`Self::next_child`], content and all.
    pub fn skip(&mut self) -> Result<(), ParseError> {
        match self.pending.take() {
            Some(false) => self.skip_open(),
            _ => Ok(()),
        }
    }

    /// The local name of the child just moved to (`rootSnapshotList` for
    /// `<vim25:rootSnapshotList>`); empty for names longer than any the exporter reads.
    pub fn name(&self) -> &[u8] {
        self.start.name()
    }

    /// True when the local name of the child just moved to is `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name() == name.as_bytes()
    }

    /// True when the child just moved to is an empty element (`<val/>`).
    pub fn is_empty(&self) -> bool {
        self.start.empty
    }

    /// True when the child just moved to is `local` in the SOAP envelope's namespace
    /// (Envelope, Header, Body or Fault).
    fn is_soap(&self, local: &str) -> bool {
        self.start.soap && self.is(local)
    }

    /// The name of the child just moved to, for messages.
    pub fn display_name(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.name())
    }

    /// The `xsi:type` (its local part: `VirtualDisk`) of the child just moved to.
    pub fn xsi_type(&mut self) -> Result<Option<&str>, ParseError> {
        read_attributes(&self.reader, &mut self.start)?;
        Ok(self
            .start
            .has_xsi_type
            .then_some(self.start.xsi_type.as_str()))
    }

    /// The unqualified `type` attribute of the child just moved to, which a
    /// ManagedObjectReference carries.
    pub fn mo_type(&mut self) -> Result<Option<&str>, ParseError> {
        read_attributes(&self.reader, &mut self.start)?;
        Ok(self
            .start
            .has_mo_type
            .then_some(self.start.mo_type.as_str()))
    }

    /// Reads the child just returned as text (entity references resolved) to its end tag;
    /// elements inside it are skipped. Valid until the cursor moves on.
    pub fn text(&mut self) -> Result<&str, ParseError> {
        self.text.clear();
        if self.pending.take() != Some(false) {
            return Ok("");
        }
        loop {
            let event = next_event(&mut self.reader, &mut self.buf)?;
            let nested = match event {
                Event::Text(text) => {
                    self.text.push_str(&text.xml10_content());
                    false
                }
                Event::CData(data) => {
                    self.text.push_str(&data.into_inner());
                    false
                }
                Event::GeneralRef(reference) => {
                    push_reference(&mut self.text, &reference.xml10_content())?;
                    false
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(&self.text);
                }
                Event::Start(start) => {
                    self.start.qname.clear();
                    self.start.qname.push_str(start.name().as_ref());
                    true
                }
                Event::Eof => return Err(ended_inside()),
                Event::Empty(_)
                | Event::Comment(_)
                | Event::Decl(_)
                | Event::PI(_)
                | Event::DocType(_) => false,
            };
            if nested {
                self.depth += 1;
                self.skip_open()?;
            }
            // Many short events (`&amp;&amp;…`) pass the per-event limit one by one.
            if self.text.len() > self.max_text {
                return Err(too_large(self.max_text));
            }
        }
    }

    /// Reads the child just returned as a ManagedObjectReference; `None` without a `type`.
    pub fn moref(&mut self) -> Result<Option<MoRef>, ParseError> {
        read_attributes(&self.reader, &mut self.start)?;
        if !self.start.has_mo_type {
            self.skip()?;
            return Ok(None);
        }
        let kind = self.start.mo_type.clone();
        let value = self.text()?.trim().to_string();
        Ok(Some(MoRef { kind, value }))
    }

    /// The start of the child just moved to (name and type attributes, no content), which
    /// stays to be read.
    pub(super) fn start_node(&mut self) -> Result<Node, ParseError> {
        read_attributes(&self.reader, &mut self.start)?;
        Ok(self.start.node())
    }

    /// Reads the child just returned, with its subtree, into a [`Node`].
    pub fn node(&mut self) -> Result<Node, ParseError> {
        self.node_with(keep_all)
    }

    /// Reads the child just returned into a [`Node`], without the elements `keep` refuses
    /// (skipped unread, at any depth).
    pub fn node_with(&mut self, keep: Keep) -> Result<Node, ParseError> {
        read_attributes(&self.reader, &mut self.start)?;
        let root = self.start.node();
        if self.pending.take() != Some(false) {
            return Ok(root);
        }
        // The open elements, outermost first: an explicit stack instead of recursion, so deep
        // documents cost heap, not stack.
        let mut open = vec![root];
        loop {
            let event = next_event(&mut self.reader, &mut self.buf)?;
            let mut skip = false;
            match event {
                Event::Start(start) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(ParseError::Malformed("elements nested too deeply".into()));
                    }
                    read_start(&self.reader, &start, false, &mut self.start)?;
                    read_attributes(&self.reader, &mut self.start)?;
                    let child = self.start.node();
                    if keep(&open, &child) {
                        open.push(child);
                    } else {
                        skip = true;
                    }
                }
                Event::Empty(start) => {
                    read_start(&self.reader, &start, true, &mut self.start)?;
                    read_attributes(&self.reader, &mut self.start)?;
                    let child = self.start.node();
                    if keep(&open, &child)
                        && let Some(parent) = open.last_mut()
                    {
                        parent.children.push(child);
                    }
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    let Some(done) = open.pop() else {
                        return Err(ParseError::Malformed("unbalanced end tag".into()));
                    };
                    let Some(parent) = open.last_mut() else {
                        return Ok(done);
                    };
                    parent.children.push(done);
                }
                Event::Text(text) => push_text(&mut open, &text.xml10_content()),
                Event::CData(data) => push_text(&mut open, &data.into_inner()),
                Event::GeneralRef(reference) => {
                    let mut resolved = String::new();
                    push_reference(&mut resolved, &reference.xml10_content())?;
                    push_text(&mut open, &resolved);
                }
                Event::Eof => return Err(ended_inside()),
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
            if skip {
                self.skip_open()?;
            }
            if open.last().is_some_and(|n| n.text.len() > self.max_text) {
                return Err(too_large(self.max_text));
            }
        }
    }

    /// Moves to the element inside `soapenv:Body` (e.g. `RetrievePropertiesExResponse`), its
    /// content not yet read. A `Fault` there becomes [`ParseError::Fault`].
    pub fn enter_body(&mut self) -> Result<(), ParseError> {
        if !self.next_child()? {
            return Err(ended_before_body());
        }
        if !self.is_soap("Envelope") {
            return Err(ParseError::Malformed(format!(
                "expected a SOAP Envelope, found <{}>",
                self.display_name()
            )));
        }
        self.enter();
        loop {
            if !self.next_child()? {
                return Err(ended_before_body());
            }
            if self.is_soap("Header") {
                continue;
            }
            if !self.is_soap("Body") || self.is_empty() {
                return Err(ParseError::Malformed("SOAP Envelope without a Body".into()));
            }
            self.enter();
            break;
        }
        if !self.next_child()? {
            return Err(ended_before_body());
        }
        if self.is_soap("Fault") {
            let fault = self.node()?;
            return Err(ParseError::Fault(fault_from(&fault)));
        }
        Ok(())
    }

    /// Reads what is left of the document to its end: an answer cut short after the last
    /// value is still a broken answer.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        while self.depth > 0 || self.pending == Some(false) {
            self.next_child()?;
        }
        Ok(())
    }

    /// Skips to the end of the element whose start was just read, its qualified name in
    /// `self.start.qname`. quick-xml does it without namespace scopes or events for us, which
    /// matters for the device lists: half the bytes of the answer about VMs with snapshots.
    /// The whole element counts as one text node against the limit.
    fn skip_open(&mut self) -> Result<(), ParseError> {
        self.buf.clear();
        let input = self.reader.get_mut();
        input.event_bytes = 0;
        let limit = input.limit;
        self.reader
            .read_to_end_into(QName(&self.start.qname), &mut self.buf)
            .map_err(|e| xml_error(e, limit))?;
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }
}

/// Appends text to the innermost open element.
fn push_text(open: &mut [Node], text: &str) {
    if let Some(top) = open.last_mut() {
        top.text.push_str(text);
    }
}

/// Decides, while a subtree is read into a [`Node`], whether a child element is worth keeping:
/// given the elements open above it (outermost first, each with the children read so far) and
/// the child's start. A child refused is skipped unread.
pub type Keep = fn(&[Node], &Node) -> bool;

/// Keeps everything.
pub fn keep_all(_: &[Node], _: &Node) -> bool {
    true
}

/// The next event, the per-event byte count started afresh.
fn next_event<'b, R: BufRead>(
    reader: &mut NsReader<Capped<R>>,
    buf: &'b mut Vec<u8>,
) -> Result<Event<'b>, ParseError> {
    buf.clear();
    reader.get_mut().event_bytes = 0;
    let limit = reader.get_mut().limit;
    reader.read_event_into(buf).map_err(|e| xml_error(e, limit))
}

fn xml_error(e: quick_xml::Error, limit: usize) -> ParseError {
    if let quick_xml::Error::Io(io) = &e
        && io.get_ref().is_some_and(|inner| inner.is::<OverLimit>())
    {
        return too_large(limit);
    }
    ParseError::Malformed(e.to_string())
}

fn too_large(limit: usize) -> ParseError {
    ParseError::TooLarge(u64::try_from(limit).unwrap_or(u64::MAX))
}

fn ended_inside() -> ParseError {
    ParseError::Malformed("document ended inside an element".into())
}

fn ended_before_body() -> ParseError {
    ParseError::Malformed("response ended before the SOAP Body".into())
}

/// Appends what `&amp;`, `&#233;` … stand for (quick-xml reports references apart from the
/// text).
fn push_reference(out: &mut String, name: &str) -> Result<(), ParseError> {
    let resolved = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => {
            let escaped = format!("&{name};");
            let resolved = quick_xml::escape::unescape(&escaped).map_err(|e| {
                ParseError::Malformed(format!("bad entity reference &{name};: {e}"))
            })?;
            out.push_str(&resolved);
            return Ok(());
        }
    };
    out.push_str(resolved);
    Ok(())
}

/// Reads a start into `out`: its local name, and its `xsi:type` and unqualified `type`
/// attributes.
fn read_start<R>(
    reader: &NsReader<R>,
    start: &BytesStart<'_>,
    empty: bool,
    out: &mut Start,
) -> Result<(), ParseError> {
    let local = start.local_name();
    let local = local.as_ref().as_bytes();
    out.empty = empty;
    out.soap = false;
    out.len = 0;
    if !empty {
        out.qname.clear();
        out.qname.push_str(start.name().as_ref());
    }
    if local.len() <= NAME_MAX {
        out.name[..local.len()].copy_from_slice(local);
        out.len = local.len();
    }
    // SOAP's own elements are told apart by namespace: a `Fault` in the envelope's namespace is
    // a SOAP fault, one in vSphere's would be data. Only these few names need resolving, which
    // spares the lookup for the millions of other elements of a large answer.
    if matches!(local, b"Envelope" | b"Header" | b"Body" | b"Fault") {
        let (element_ns, _) = reader.resolver().resolve_element(start.name());
        out.soap = matches!(element_ns, ResolveResult::Bound(Namespace(ns)) if ns == SOAP_ENV);
    }
    out.attrs_raw.clear();
    let raw = start.attributes_raw();
    if !raw.trim().is_empty() {
        out.attrs_raw.push_str(raw);
    }
    out.attrs_read = false;
    Ok(())
}

/// Reads the `xsi:type` and unqualified `type` attributes of `start`, once. The namespaces in
/// scope are still the start's: the reader has not moved on.
fn read_attributes<R>(reader: &NsReader<R>, out: &mut Start) -> Result<(), ParseError> {
    if out.attrs_read {
        return Ok(());
    }
    out.attrs_read = true;
    out.has_xsi_type = false;
    out.has_mo_type = false;
    if out.attrs_raw.is_empty() {
        return Ok(());
    }
    let start = BytesStart::from_content(out.attrs_raw.as_str(), 0);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::Malformed(e.to_string()))?;
        let (ns, attr_local) = reader.resolver().resolve_attribute(attr.key);
        if attr_local.as_ref() != "type" {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        match ns {
            ResolveResult::Bound(Namespace(uri)) if uri == XSI => {
                let local_type = value.rsplit(':').next().unwrap_or_default();
                out.xsi_type.clear();
                out.xsi_type.push_str(local_type);
                out.has_xsi_type = true;
            }
            ResolveResult::Unbound => {
                out.mo_type.clear();
                out.mo_type.push_str(&value);
                out.has_mo_type = true;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A SOAP `Fault` element read into its vSphere fault type and message.
fn fault_from(fault: &Node) -> Fault {
    let message = fault.text_of("faultstring").unwrap_or_default().trim();
    // The detail holds one element such as `<NotAuthenticatedFault xsi:type="NotAuthenticated">`.
    let kind = fault
        .child("detail")
        .and_then(|d| d.children.first())
        .map(|d| match &d.xsi_type {
            Some(t) => t.clone(),
            None => d.name.strip_suffix("Fault").unwrap_or(&d.name).to_string(),
        })
        .unwrap_or_else(|| {
            fault
                .text_of("faultcode")
                .unwrap_or("unknown")
                .trim()
                .to_string()
        });
    Fault {
        kind,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::read_update_set;
    use crate::vsphere::xml::tests::wait_answer_with_text;

    #[test]
    fn a_text_node_over_the_limit_fails_the_read_without_holding_it() {
        let limits = Limits {
            max_text_bytes: 1024,
        };
        let xml = wait_answer_with_text(&"x".repeat(1 << 20));
        let mut cur = Cursor::new(&xml[..], &limits);
        cur.enter_body().unwrap();
        cur.enter();
        assert!(cur.next_child().unwrap());
        cur.enter();
        assert!(cur.next_child().unwrap() && cur.is("version"));
        let err = cur.text().unwrap_err();
        assert!(matches!(err, ParseError::TooLarge(_)), "{err:?}");
        assert!(err.to_string().contains("1024 bytes"), "{err}");
        // What was read of it stays within the limit.
        assert!(cur.buf.len() <= 1025, "{}", cur.buf.len());
        assert!(cur.text.len() <= 1025, "{}", cur.text.len());

        // At the limit it is read.
        let xml = wait_answer_with_text(&"x".repeat(1024));
        let head = read_update_set(&xml[..], &limits, |_, _| Ok(())).unwrap();
        assert_eq!(head.map(|h| h.version.len()), Some(1024));
    }

    #[test]
    fn text_skips_elements_inside_it_and_resolves_references() {
        let xml = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><R><v>a<b><c>x</c></b>&lt;<![CDATA[<z>]]>&#65;</v><w>next</w></R></s:Body></s:Envelope>"#;
        let mut cur = Cursor::new(&xml[..], &Limits::default());
        cur.enter_body().unwrap();
        cur.enter();
        assert!(cur.next_child().unwrap() && cur.is("v"));
        assert_eq!(cur.text().unwrap(), "a<<z>A");
        assert!(cur.next_child().unwrap() && cur.is("w"));
        assert_eq!(cur.text().unwrap(), "next");
        assert!(!cur.next_child().unwrap());
    }

    #[test]
    fn empty_elements_read_as_empty_text_and_no_children() {
        let xml = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><R><a/><b type="Folder"/><c>1</c></R></s:Body></s:Envelope>"#;
        let mut cur = Cursor::new(&xml[..], &Limits::default());
        cur.enter_body().unwrap();
        cur.enter();
        assert!(cur.next_child().unwrap() && cur.is("a") && cur.is_empty());
        cur.enter();
        assert!(
            !cur.next_child().unwrap(),
            "an empty element has no children"
        );
        assert!(cur.next_child().unwrap() && cur.is("b"));
        assert_eq!(
            cur.moref().unwrap(),
            Some(MoRef {
                kind: "Folder".into(),
                value: String::new()
            })
        );
        assert!(cur.next_child().unwrap() && cur.is("c"));
        assert_eq!(cur.text().unwrap(), "1");
        assert!(!cur.next_child().unwrap());
    }
}
