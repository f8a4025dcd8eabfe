//! Reading SOAP responses: a namespace-aware pass over quick-xml events that turns small
//! subtrees into [`Node`]s and recognises SOAP faults.
//!
//! vCenter and the simulator bind the same namespaces to different prefixes (`xsi:type`
//! against `XMLSchema-instance:type`), so names are matched by namespace and local name, never
//! by prefix. A RetrievePropertiesEx answer is read object by object ([`read_retrieve_result`]):
//! only one `objects` subtree is held at a time, never the whole document as a tree.
//!
//! This module knows SOAP and XML, not what the properties mean (see [`super::inventory`]).

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::error::{Fault, ParseError};
use super::model::MoRef;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Marks the local names of elements in SOAP's own namespace (`soap:Body`).
const SOAP_PREFIX: &str = "soap:";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Nesting deeper than this is refused: no vSphere answer comes near it, and it bounds the
/// stack and memory a hostile or broken peer can make us spend.
const MAX_DEPTH: usize = 64;

/// One XML element with its text and children; what a property value is read from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// The local name (`rootSnapshotList`).
    pub name: String,
    /// The local part of `xsi:type` (`VirtualDisk` for `xsi:type="vim25:VirtualDisk"`).
    pub xsi_type: Option<String>,
    /// The unqualified `type` attribute, which a ManagedObjectReference carries.
    pub mo_type: Option<String>,
    /// The element's own text, entity references resolved.
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// This element read as a ManagedObjectReference (`<obj type="VirtualMachine">vm-57</obj>`).
    pub fn moref(&self) -> Option<MoRef> {
        let kind = self.mo_type.as_deref()?;
        Some(MoRef::new(kind, self.text.trim()))
    }
}

/// Decides, while a subtree is read, whether a child element is worth keeping: given the
/// elements open above it (outermost first, each with the children read so far) and the
/// child's start. A skipped child costs no allocation for its content.
pub type Keep = fn(&[Node], &Node) -> bool;

/// Keeps everything.
pub fn keep_all(_: &[Node], _: &Node) -> bool {
    true
}

/// A pull reader over a SOAP response.
pub struct SoapReader<R> {
    reader: NsReader<R>,
    buf: Vec<u8>,
    keep: Keep,
}

/// What the reader found next at the current level.
enum Step {
    Start(Node, bool),
    End,
    Eof,
}

impl<R: BufRead> SoapReader<R> {
    pub fn new(input: R) -> Self {
        let mut reader = NsReader::from_reader(input);
        reader.config_mut().trim_text(false);
        SoapReader {
            reader,
            buf: Vec::with_capacity(4096),
            keep: keep_all,
        }
    }

    /// Skips the children `keep` refuses, at any depth of the subtrees read.
    pub fn with_keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }

    /// Moves to the first element inside `soapenv:Body`. A `Fault` there becomes
    /// [`ParseError::Fault`]; otherwise the element (e.g. `RetrievePropertiesExResponse`) is
    /// returned with whether it is empty (`<LogoutResponse/>`), its content not yet read.
    pub fn enter_body(&mut self) -> Result<(Node, bool), ParseError> {
        let envelope = self.expect_start()?;
        if envelope.0.name != "soap:Envelope" {
            return Err(ParseError::Malformed(format!(
                "expected a SOAP Envelope, found <{}>",
                envelope.0.name
            )));
        }
        loop {
            let (node, empty) = self.expect_start()?;
            if node.name == "soap:Header" {
                if !empty {
                    self.skip_rest()?;
                }
                continue;
            }
            if node.name != "soap:Body" || empty {
                return Err(ParseError::Malformed("SOAP Envelope without a Body".into()));
            }
            break;
        }
        let (first, empty) = self.expect_start()?;
        if first.name == "soap:Fault" {
            let fault = if empty {
                first
            } else {
                self.read_subtree(first, 1)?
            };
            return Err(ParseError::Fault(fault_from(&fault)));
        }
        Ok((first, empty))
    }

    /// Reads the whole response element, for small answers (Login, RetrieveServiceContent).
    pub fn read_body(mut self) -> Result<Node, ParseError> {
        let (response, empty) = self.enter_body()?;
        self.finish(response, empty)
    }

    /// The next child element of the element being read, with its subtree, or `None` at the
    /// parent's end tag.
    pub fn next_child(&mut self) -> Result<Option<Node>, ParseError> {
        match self.step()? {
            Step::Start(node, true) => Ok(Some(node)),
            Step::Start(node, false) => self.read_subtree(node, 1).map(Some),
            Step::End => Ok(None),
            Step::Eof => Err(ParseError::Malformed(
                "document ended inside an element".into(),
            )),
        }
    }

    /// The next child element's start, without its content, or `None` at the parent's end.
    pub fn next_child_start(&mut self) -> Result<Option<(Node, bool)>, ParseError> {
        match self.step()? {
            Step::Start(node, empty) => Ok(Some((node, empty))),
            Step::End => Ok(None),
            Step::Eof => Err(ParseError::Malformed(
                "document ended inside an element".into(),
            )),
        }
    }

    /// Reads the content of an element whose start was returned by [`Self::next_child_start`].
    pub fn finish(&mut self, start: Node, empty: bool) -> Result<Node, ParseError> {
        if empty {
            return Ok(start);
        }
        self.read_subtree(start, 1)
    }

    fn expect_start(&mut self) -> Result<(Node, bool), ParseError> {
        match self.step()? {
            Step::Start(node, empty) => Ok((node, empty)),
            Step::End | Step::Eof => Err(ParseError::Malformed(
                "response ended before the SOAP Body".into(),
            )),
        }
    }

    /// Skips everything up to the end of the element whose start was just read.
    fn skip_rest(&mut self) -> Result<(), ParseError> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.step()? {
                Step::Start(_, false) => depth += 1,
                Step::Start(_, true) => {}
                Step::End => depth -= 1,
                Step::Eof => {
                    return Err(ParseError::Malformed(
                        "document ended inside an element".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads children and text until the end tag of `node`, whose start was just read.
    fn read_subtree(&mut self, node: Node, depth: usize) -> Result<Node, ParseError> {
        // An explicit stack instead of recursion: deep documents cost heap, not stack.
        let mut stack = vec![node];
        let mut depth = depth;
        loop {
            self.buf.clear();
            let event = self.reader.read_event_into(&mut self.buf);
            let event = event.map_err(|e| ParseError::Malformed(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(ParseError::Malformed("elements nested too deeply".into()));
                    }
                    let child = start_node(&self.reader, &start)?;
                    if (self.keep)(&stack, &child) {
                        stack.push(child);
                    } else {
                        depth -= 1;
                        self.skip_rest()?;
                    }
                }
                Event::Empty(start) => {
                    let child = start_node(&self.reader, &start)?;
                    if (self.keep)(&stack, &child) {
                        push_child(&mut stack, child);
                    }
                }
                Event::End(_) => {
                    depth -= 1;
                    let Some(done) = stack.pop() else {
                        return Err(ParseError::Malformed("unbalanced end tag".into()));
                    };
                    if stack.is_empty() {
                        return Ok(done);
                    }
                    push_child(&mut stack, done);
                }
                Event::Text(text) => append_text(&mut stack, &text.xml10_content()),
                Event::CData(data) => {
                    let data = data.into_inner();
                    append_text(&mut stack, &data);
                }
                Event::GeneralRef(reference) => {
                    let resolved = resolve_reference(&reference.xml10_content())?;
                    append_text(&mut stack, &resolved);
                }
                Event::Eof => {
                    return Err(ParseError::Malformed(
                        "document ended inside an element".into(),
                    ));
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    fn step(&mut self) -> Result<Step, ParseError> {
        loop {
            self.buf.clear();
            let event = self.reader.read_event_into(&mut self.buf);
            let event = event.map_err(|e| ParseError::Malformed(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    return Ok(Step::Start(start_node(&self.reader, &start)?, false));
                }
                Event::Empty(start) => {
                    return Ok(Step::Start(start_node(&self.reader, &start)?, true));
                }
                Event::End(_) => return Ok(Step::End),
                Event::Eof => return Ok(Step::Eof),
                // Whitespace and anything else between elements carries nothing.
                _ => {}
            }
        }
    }
}

fn push_child(stack: &mut [Node], child: Node) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(child);
    }
}

fn append_text(stack: &mut [Node], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

/// Resolves `&amp;`, `&#233;` … (quick-xml reports references apart from the text).
fn resolve_reference(name: &str) -> Result<String, ParseError> {
    let escaped = format!("&{name};");
    quick_xml::escape::unescape(&escaped)
        .map(|s| s.into_owned())
        .map_err(|e| ParseError::Malformed(format!("bad entity reference &{name};: {e}")))
}

/// The node for a start tag: local name, `xsi:type` and the unqualified `type` attribute.
fn start_node<R>(reader: &NsReader<R>, start: &BytesStart<'_>) -> Result<Node, ParseError> {
    let local = start.local_name();
    let local = local.as_ref();
    let mut name = String::with_capacity(local.len() + SOAP_PREFIX.len());
    // SOAP's own elements are told apart by namespace: a `Fault` in the envelope's namespace is
    // a SOAP fault, one in vSphere's would be data. Only these few names need resolving, which
    // spares the lookup for the millions of other elements of a large answer.
    if matches!(local, "Envelope" | "Header" | "Body" | "Fault") {
        let (element_ns, _) = reader.resolver().resolve_element(start.name());
        if matches!(element_ns, ResolveResult::Bound(Namespace(ns)) if ns == SOAP_ENV) {
            name.push_str(SOAP_PREFIX);
        }
    }
    name.push_str(local);
    let mut node = Node {
        name,
        ..Default::default()
    };
    if start.attributes_raw().trim().is_empty() {
        return Ok(node);
    }
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::Malformed(e.to_string()))?;
        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
        if local.as_ref() != "type" {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        match ns {
            ResolveResult::Bound(Namespace(uri)) if uri == XSI => {
                let local_type = value.rsplit(':').next().unwrap_or_default();
                node.xsi_type = Some(local_type.to_string());
            }
            ResolveResult::Unbound => node.mo_type = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(node)
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

/// A vSphere fault inside a value (`missingSet/fault/fault`), by its `xsi:type`.
pub fn method_fault_kind(fault: &Node) -> String {
    fault.xsi_type.clone().unwrap_or_else(|| fault.name.clone())
}

/// Reads a `RetrieveResult` (the answer of RetrievePropertiesEx and of
/// ContinueRetrievePropertiesEx) object by object, handing each `objects` element to
/// `on_object`, and returns the paging token when there is one. An empty answer (no
/// `returnval`: nothing matched) is an empty result.
pub fn read_retrieve_result<R: BufRead>(
    input: R,
    keep: Keep,
    mut on_object: impl FnMut(Node) -> Result<(), ParseError>,
) -> Result<Option<String>, ParseError> {
    let mut reader = SoapReader::new(input).with_keep(keep);
    let (response, empty) = reader.enter_body()?;
    if !response.name.ends_with("Response") {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            response.name
        )));
    }
    let mut token = None;
    if empty {
        return Ok(None);
    }
    while let Some((returnval, empty)) = reader.next_child_start()? {
        if returnval.name != "returnval" || empty {
            reader.finish(returnval, empty)?;
            continue;
        }
        while let Some(child) = reader.next_child()? {
            match child.name.as_str() {
                "objects" => on_object(child)?,
                "token" => token = Some(child.text.trim().to_string()),
                _ => {}
            }
        }
    }
    Ok(token.filter(|t| !t.is_empty()))
}

/// The head of a WaitForUpdatesEx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSetHead {
    pub version: String,
    /// More updates are waiting: ask again at once with `version`.
    pub truncated: bool,
}

/// Reads an `UpdateSet` (the answer of WaitForUpdatesEx) update by update, handing each
/// `objectSet` element (an ObjectUpdate) with the id of its filter to `on_update`. `None` when
/// the wait ended without changes (no `returnval`).
pub fn read_update_set<R: BufRead>(
    input: R,
    keep: Keep,
    mut on_update: impl FnMut(&str, Node) -> Result<(), ParseError>,
) -> Result<Option<UpdateSetHead>, ParseError> {
    let mut reader = SoapReader::new(input).with_keep(keep);
    let (response, empty) = reader.enter_body()?;
    if response.name != "WaitForUpdatesExResponse" {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            response.name
        )));
    }
    if empty {
        return Ok(None);
    }
    let mut head = None;
    while let Some((returnval, empty)) = reader.next_child_start()? {
        if returnval.name != "returnval" || empty {
            reader.finish(returnval, empty)?;
            continue;
        }
        let mut version = None;
        let mut truncated = false;
        while let Some((child, empty)) = reader.next_child_start()? {
            match child.name.as_str() {
                "filterSet" if !empty => {
                    let mut filter = String::new();
                    while let Some(part) = reader.next_child()? {
                        match part.name.as_str() {
                            "filter" => filter = part.text.trim().to_string(),
                            "objectSet" => on_update(&filter, part)?,
                            _ => {}
                        }
                    }
                }
                _ => {
                    let node = reader.finish(child, empty)?;
                    match node.name.as_str() {
                        "version" => version = Some(node.text.trim().to_string()),
                        "truncated" => truncated = node.text.trim() == "true",
                        _ => {}
                    }
                }
            }
        }
        let version =
            version.ok_or_else(|| ParseError::Malformed("UpdateSet without a version".into()))?;
        head = Some(UpdateSetHead { version, truncated });
    }
    Ok(head)
}

/// Reads a small answer whole and returns its `returnval` (or the response element itself
/// when the method returns nothing).
pub fn read_returnval(input: &[u8]) -> Result<Node, ParseError> {
    let response = SoapReader::new(input).read_body()?;
    match response.child("returnval") {
        Some(rv) => Ok(rv.clone()),
        None => Ok(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soap_fault_with_detail_gives_the_vsphere_fault_type() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring>
<detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let err = read_returnval(xml).unwrap_err();
        let ParseError::Fault(fault) = err else {
            panic!("expected a fault, got {err:?}");
        };
        assert_eq!(fault.kind, "NotAuthenticated");
        assert_eq!(fault.message, "The session is not authenticated.");
    }

    #[test]
    fn fault_without_xsi_type_uses_the_detail_element_name() {
        let xml = br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault><faultcode>ServerFaultCode</faultcode><faultstring>bad login</faultstring><detail><InvalidLoginFault xmlns="urn:vim25"/></detail></e:Fault></e:Body></e:Envelope>"#;
        let ParseError::Fault(fault) = read_returnval(xml).unwrap_err() else {
            panic!("expected a fault");
        };
        assert_eq!(fault.kind, "InvalidLogin");
    }

    #[test]
    fn xsi_type_is_resolved_by_namespace_not_by_prefix() {
        // The simulator binds XMLSchema-instance to its own prefix.
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><about><apiVersion>7.0</apiVersion></about><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">a &amp; b &#233;</val></returnval></RetrieveServiceContentResponse></soapenv:Body></soapenv:Envelope>"#;
        let rv = read_returnval(xml).unwrap();
        assert_eq!(
            rv.child("rootFolder").and_then(Node::moref),
            Some(MoRef::new("Folder", "group-d1"))
        );
        let val = rv.child("val").unwrap();
        assert_eq!(val.xsi_type.as_deref(), Some("string"));
        assert_eq!(val.text, "a & b é");
        assert_eq!(
            rv.child("about").and_then(|a| a.text_of("apiVersion")),
            Some("7.0")
        );
    }

    #[test]
    fn a_type_attribute_in_another_namespace_is_neither_xsi_nor_moref() {
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><R xmlns:o="urn:other"><returnval><v o:type="x">1</v></returnval></R></soapenv:Body></soapenv:Envelope>"#;
        let rv = read_returnval(xml).unwrap();
        let v = rv.child("v").unwrap();
        assert_eq!((v.xsi_type.as_ref(), v.mo_type.as_ref()), (None, None));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"<notsoap/>",
            b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><R><returnval>",
            b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><R></X></soapenv:Body></soapenv:Envelope>",
            b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><R><returnval>&bogus;</returnval></R></soapenv:Body></soapenv:Envelope>",
        ] {
            assert!(
                matches!(read_returnval(bad), Err(ParseError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut xml = String::from(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><R><returnval>",
        );
        xml.push_str(&"<a>".repeat(1000));
        xml.push_str(&"</a>".repeat(1000));
        xml.push_str("</returnval></R></s:Body></s:Envelope>");
        let err = read_returnval(xml.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
    }

    #[test]
    fn update_set_is_read_update_by_update_with_its_filter() {
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>7</version>
<filterSet><filter type="PropertyFilter">session[1]f1</filter>
<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">a</val></changeSet></objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-2</obj></objectSet></filterSet>
<filterSet><filter type="PropertyFilter">session[1]f2</filter><objectSet><kind>enter</kind><obj type="VirtualMachine">vm-3</obj></objectSet></filterSet>
<truncated>true</truncated></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let mut seen = Vec::new();
        let head = read_update_set(&xml[..], keep_all, |filter, update| {
            seen.push((
                filter.to_string(),
                update.text_of("kind").unwrap_or_default().to_string(),
                update.child("obj").and_then(Node::moref).unwrap().value,
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            head,
            Some(UpdateSetHead {
                version: "7".into(),
                truncated: true
            })
        );
        let strs: Vec<(&str, &str, &str)> = seen
            .iter()
            .map(|(f, k, o)| (f.as_str(), k.as_str(), o.as_str()))
            .collect();
        assert_eq!(
            strs,
            [
                ("session[1]f1", "modify", "vm-1"),
                ("session[1]f1", "leave", "vm-2"),
                ("session[1]f2", "enter", "vm-3")
            ]
        );
    }

    #[test]
    fn an_empty_wait_answer_has_no_update_set() {
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#;
        assert_eq!(
            read_update_set(&xml[..], keep_all, |_, _| Ok(())).unwrap(),
            None
        );
    }
}
