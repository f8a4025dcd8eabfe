//! Reading SOAP responses: a namespace-aware [`Cursor`] over quick-xml events, the SOAP
//! envelope and its faults, and the limit on any single value of an answer.
//!
//! Large answers are read straight from events into whatever the caller builds, element by
//! element: [`read_update_set`] and [`read_retrieve_result`] stop at each ObjectUpdate or
//! ObjectContent and hand the cursor to the caller, which decodes it (see
//! [`super::properties`]); nothing of the document is kept as a tree. Small answers (Login,
//! RetrieveServiceContent, faults) are read into a generic [`Node`] tree.
//!
//! vCenter and the simulator bind the same namespaces to different prefixes (`xsi:type`
//! against `XMLSchema-instance:type`), so names are matched by namespace and local name, never
//! by prefix.
//!
//! This file holds the limits, the [`Node`] tree and the readers of whole answers (a
//! RetrieveResult, an UpdateSet, a small answer's `returnval`); the pull reader itself, with
//! the envelope and its faults, is `cursor.rs`, re-exported here.
//!
//! This module knows SOAP and XML, not what the properties mean.

mod cursor;

use std::io::BufRead;

pub use self::cursor::{Cursor, Keep, keep_all};
use super::error::ParseError;
use super::model::MoRef;

/// The default of [`Limits::max_text_bytes`]: 64 MiB, far above any real value (the largest
/// are descriptions and file names of a few kB). Whole bodies have their own limit in the
/// client (`max_response_size`); a streamed answer is never held whole.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 64 << 20;

/// What one answer from vCenter may make the parser hold. Over the limit, reading fails with
/// [`ParseError::TooLarge`] before more than the limit is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest single text node (or tag, or element skipped unread) in an answer, in bytes.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
        }
    }
}

/// One XML element with its text and children; what a small answer is read into.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// The local name (`rootSnapshotList`); `soap:` and the local name for the elements of
    /// the SOAP envelope's namespace (`soap:Fault`).
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

/// The fault type of a `LocalizedMethodFault.fault` (inside a `missingSet`, or an event's):
/// its `xsi:type`, else its element name.
pub fn method_fault_kind(fault: &Node) -> String {
    fault.xsi_type.clone().unwrap_or_else(|| fault.name.clone())
}

/// A pull reader over a small SOAP answer that reads elements into [`Node`]s (for answers whose
/// parts are read as trees, such as the PerformanceManager's).
pub struct SoapReader<R> {
    cur: Cursor<R>,
}

impl<R: BufRead> SoapReader<R> {
    pub fn new(input: R) -> Self {
        SoapReader {
            cur: Cursor::new(input, &Limits::default()),
        }
    }

    /// Moves into the element inside `soapenv:Body` and returns its start (without content),
    /// with whether it is empty; [`Self::next_child`] then reads its children. A `Fault` there
    /// becomes [`ParseError::Fault`].
    pub fn enter_body(&mut self) -> Result<(Node, bool), ParseError> {
        self.cur.enter_body()?;
        let start = self.cur.start_node()?;
        let empty = self.cur.is_empty();
        self.cur.enter();
        Ok((start, empty))
    }

    /// Reads the whole element inside `soapenv:Body`, for small answers.
    pub fn read_body(mut self) -> Result<Node, ParseError> {
        self.cur.enter_body()?;
        let body = self.cur.node()?;
        self.cur.finish()?;
        Ok(body)
    }

    /// The next child element of the element being read, with its subtree, or `None` at the
    /// parent's end tag.
    pub fn next_child(&mut self) -> Result<Option<Node>, ParseError> {
        if !self.cur.next_child()? {
            return Ok(None);
        }
        self.cur.node().map(Some)
    }
}

/// Reads a `RetrieveResult` (the answer of RetrievePropertiesEx and of
/// ContinueRetrievePropertiesEx), stopping at each `objects` element (an ObjectContent) to
/// hand the cursor, positioned at it, to `on_object`, which reads it whole or not at all.
/// Returns the paging token when there is one. An empty answer (no `returnval`: nothing
/// matched) is an empty result.
pub fn read_retrieve_result<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_object: impl FnMut(&mut Cursor<R>) -> Result<(), ParseError>,
) -> Result<Option<String>, ParseError> {
    let mut cur = Cursor::new(input, limits);
    cur.enter_body()?;
    if !cur.name().ends_with(b"Response") {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            cur.display_name()
        )));
    }
    cur.enter();
    let mut token = None;
    while cur.next_child()? {
        if !cur.is("returnval") {
            continue;
        }
        cur.enter();
        while cur.next_child()? {
            match cur.name() {
                b"objects" => on_object(&mut cur)?,
                b"token" => token = Some(cur.text()?.trim().to_string()),
                _ => {}
            }
        }
    }
    cur.finish()?;
    Ok(token.filter(|t| !t.is_empty()))
}

/// The head of a WaitForUpdatesEx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSetHead {
    pub version: String,
    /// More updates are waiting: ask again at once with `version`.
    pub truncated: bool,
}

/// Reads an `UpdateSet` (the answer of WaitForUpdatesEx), stopping at each `objectSet`
/// element (an ObjectUpdate) to hand the cursor, positioned at it, with the id of its filter
/// to `on_update`, which reads it whole or not at all. `None` when the wait ended without
/// changes (no `returnval`).
pub fn read_update_set<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_update: impl FnMut(&str, &mut Cursor<R>) -> Result<(), ParseError>,
) -> Result<Option<UpdateSetHead>, ParseError> {
    let mut cur = Cursor::new(input, limits);
    cur.enter_body()?;
    if !cur.is("WaitForUpdatesExResponse") {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            cur.display_name()
        )));
    }
    cur.enter();
    let mut head = None;
    while cur.next_child()? {
        if !cur.is("returnval") {
            continue;
        }
        cur.enter();
        let mut version = None;
        let mut truncated = false;
        let mut filter = String::new();
        while cur.next_child()? {
            match cur.name() {
                b"version" => version = Some(cur.text()?.trim().to_string()),
                b"truncated" => truncated = cur.text()?.trim() == "true",
                b"filterSet" => {
                    cur.enter();
                    filter.clear();
                    while cur.next_child()? {
                        match cur.name() {
                            b"filter" => {
                                let id = cur.text()?.trim();
                                filter.clear();
                                filter.push_str(id);
                            }
                            b"objectSet" => on_update(&filter, &mut cur)?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let version =
            version.ok_or_else(|| ParseError::Malformed("UpdateSet without a version".into()))?;
        head = Some(UpdateSetHead { version, truncated });
    }
    cur.finish()?;
    Ok(head)
}

/// Reads a small answer whole and returns its `returnval` (or the response element itself
/// when the method returns nothing).
pub fn read_returnval(input: &[u8]) -> Result<Node, ParseError> {
    let mut response = SoapReader::new(input).read_body()?;
    match response.children.iter().position(|c| c.name == "returnval") {
        Some(i) => Ok(response.children.swap_remove(i)),
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
    fn a_fault_outside_the_soap_namespace_is_data_not_a_fault() {
        let xml = br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><Fault xmlns="urn:vim25"><x>1</x></Fault></e:Body></e:Envelope>"#;
        let node = read_returnval(xml).unwrap();
        assert_eq!(node.name, "Fault");
        assert_eq!(node.text_of("x"), Some("1"));
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
            b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body/></soapenv:Envelope>",
            b"<soapenv:Envelope xmlns:soapenv=\"urn:not-soap\"><soapenv:Body><R/></soapenv:Body></soapenv:Envelope>",
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
        // Content skipped unread is not held as a tree, so its depth costs no stack; its size
        // counts against the limit of one value.
        let wait = xml
            .replace("<R>", "<WaitForUpdatesExResponse>")
            .replace("</R>", "</WaitForUpdatesExResponse>")
            .replace("<returnval>", "<returnval><version>1</version>");
        let head = read_update_set(wait.as_bytes(), &Limits::default(), |_, _| Ok(()));
        assert_eq!(head.unwrap().map(|h| h.version), Some("1".to_string()));
        let small = Limits {
            max_text_bytes: 1000,
        };
        let err = read_update_set(wait.as_bytes(), &small, |_, _| Ok(())).unwrap_err();
        assert_eq!(err, ParseError::TooLarge(1000));
    }

    const UPDATE_SET: &[u8] = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>7</version>
<filterSet><filter type="PropertyFilter">session[1]f1</filter>
<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">a</val></changeSet></objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-2</obj></objectSet></filterSet>
<filterSet><filter type="PropertyFilter">session[1]f2</filter><objectSet><kind>enter</kind><obj type="VirtualMachine">vm-3</obj></objectSet></filterSet>
<truncated>true</truncated></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn update_set_is_read_update_by_update_with_its_filter() {
        let mut seen = Vec::new();
        let head = read_update_set(UPDATE_SET, &Limits::default(), |filter, cur| {
            let update = cur.node()?;
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
    fn an_update_left_unread_is_skipped_whole() {
        let mut filters = Vec::new();
        let head = read_update_set(UPDATE_SET, &Limits::default(), |filter, _| {
            filters.push(filter.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(filters, ["session[1]f1", "session[1]f1", "session[1]f2"]);
        assert!(head.is_some_and(|h| h.truncated && h.version == "7"));
    }

    #[test]
    fn an_empty_wait_answer_has_no_update_set() {
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let head = read_update_set(&xml[..], &Limits::default(), |_, _| Ok(())).unwrap();
        assert_eq!(head, None);
    }

    /// A WaitForUpdatesEx answer whose version is `text`.
    pub(super) fn wait_answer_with_text(text: &str) -> Vec<u8> {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>{text}</version></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
        .into_bytes()
    }

    #[test]
    fn many_short_references_cannot_add_up_past_the_limit() {
        let limits = Limits {
            max_text_bytes: 1024,
        };
        let xml = wait_answer_with_text(&"&amp;".repeat(10_000));
        let err = read_update_set(&xml[..], &limits, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, ParseError::TooLarge(_)), "{err:?}");
    }

    #[test]
    fn a_tag_over_the_limit_fails_too() {
        let limits = Limits {
            max_text_bytes: 1024,
        };
        let long = format!("<version a=\"{}\">1</version>", "y".repeat(1 << 16));
        let xml = String::from_utf8(wait_answer_with_text("1"))
            .unwrap()
            .replace("<version>1</version>", &long);
        let err = read_update_set(xml.as_bytes(), &limits, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, ParseError::TooLarge(_)), "{err:?}");
    }
}
