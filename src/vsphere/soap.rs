//! Building SOAP requests: pure functions from arguments to envelope text, so the exact bytes
//! sent to vCenter are unit-tested. Every string argument is XML-escaped here.
//!
//! Element order follows the vim25 WSDL (vCenter validates it): PropertyFilterSpec is
//! `propSet, objectSet`; ObjectSpec `obj, skip, selectSet`; TraversalSpec `name, type, path,
//! skip`.

use std::fmt::Write;

use quick_xml::escape::escape;

use super::model::MoRef;

/// The vSphere API namespace.
pub const VIM25: &str = "urn:vim25";

/// One property set to retrieve: a managed object type and its property paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertySpec {
    pub kind: &'static str,
    pub paths: Vec<&'static str>,
}

/// Wraps a method element in a SOAP envelope.
pub fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
            r#" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#,
            r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
        ),
        body
    )
}

fn moref(tag: &str, r: &MoRef) -> String {
    format!(
        r#"<{tag} type="{}">{}</{tag}>"#,
        escape(r.kind.as_str()),
        escape(r.value.as_str())
    )
}

fn text(tag: &str, value: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(value))
}

/// `RetrieveServiceContent` on the well-known ServiceInstance.
pub fn retrieve_service_content() -> String {
    envelope(&format!(
        r#"<RetrieveServiceContent xmlns="{VIM25}">{}</RetrieveServiceContent>"#,
        moref("_this", &MoRef::new("ServiceInstance", "ServiceInstance"))
    ))
}

/// `Login`. The password is in the body and nowhere else; callers never log request bodies.
pub fn login(session_manager: &MoRef, user: &str, password: &str) -> String {
    envelope(&format!(
        r#"<Login xmlns="{VIM25}">{}{}{}</Login>"#,
        moref("_this", session_manager),
        text("userName", user),
        text("password", password)
    ))
}

/// `Logout`.
pub fn logout(session_manager: &MoRef) -> String {
    envelope(&format!(
        r#"<Logout xmlns="{VIM25}">{}</Logout>"#,
        moref("_this", session_manager)
    ))
}

/// `CreateContainerView` over `container`, recursive, of the given types.
pub fn create_container_view(view_manager: &MoRef, container: &MoRef, kinds: &[&str]) -> String {
    let mut types = String::new();
    for kind in kinds {
        types.push_str(&text("type", kind));
    }
    envelope(&format!(
        r#"<CreateContainerView xmlns="{VIM25}">{}{}{types}<recursive>true</recursive></CreateContainerView>"#,
        moref("_this", view_manager),
        moref("container", container),
    ))
}

/// `DestroyView`.
pub fn destroy_view(view: &MoRef) -> String {
    envelope(&format!(
        r#"<DestroyView xmlns="{VIM25}">{}</DestroyView>"#,
        moref("_this", view)
    ))
}

/// `RetrievePropertiesEx` of `props` on every object of a ContainerView. `max_objects` asks
/// for pages of that size (vCenter may page smaller; `None` leaves the server's default).
pub fn retrieve_properties_ex(
    collector: &MoRef,
    view: &MoRef,
    props: &[PropertySpec],
    max_objects: Option<u32>,
) -> String {
    let mut body = format!(r#"<RetrievePropertiesEx xmlns="{VIM25}">"#);
    body.push_str(&moref("_this", collector));
    body.push_str("<specSet>");
    for spec in props {
        body.push_str("<propSet>");
        body.push_str(&text("type", spec.kind));
        for path in &spec.paths {
            body.push_str(&text("pathSet", path));
        }
        body.push_str("</propSet>");
    }
    body.push_str("<objectSet>");
    body.push_str(&moref("obj", view));
    body.push_str("<skip>true</skip>");
    body.push_str(concat!(
        r#"<selectSet xsi:type="TraversalSpec"><name>traverseView</name>"#,
        "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet>"
    ));
    body.push_str("</objectSet></specSet><options>");
    if let Some(n) = max_objects {
        // Writing to a String cannot fail.
        let _ = write!(body, "<maxObjects>{n}</maxObjects>");
    }
    body.push_str("</options></RetrievePropertiesEx>");
    envelope(&body)
}

/// `ContinueRetrievePropertiesEx` with the token of the previous page.
pub fn continue_retrieve_properties_ex(collector: &MoRef, token: &str) -> String {
    envelope(&format!(
        r#"<ContinueRetrievePropertiesEx xmlns="{VIM25}">{}{}</ContinueRetrievePropertiesEx>"#,
        moref("_this", collector),
        text("token", token)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::SoapReader;

    #[test]
    fn login_escapes_user_and_password() {
        let xml = login(
            &MoRef::new("SessionManager", "SessionManager"),
            "a<b@vsphere.local",
            "p&ss\"<>",
        );
        assert!(xml.contains("<userName>a&lt;b@vsphere.local</userName>"), "{xml}");
        assert!(xml.contains("<password>p&amp;ss&quot;&lt;&gt;</password>"), "{xml}");
        // And it reads back to the same values: the envelope is well-formed XML.
        let body = SoapReader::new(xml.as_bytes()).read_body().unwrap();
        assert_eq!(body.text_of("password"), Some("p&ss\"<>"));
        assert_eq!(body.text_of("userName"), Some("a<b@vsphere.local"));
    }

    #[test]
    fn retrieve_properties_ex_has_the_wsdl_element_order() {
        let xml = retrieve_properties_ex(
            &MoRef::new("PropertyCollector", "propertyCollector"),
            &MoRef::new("ContainerView", "session[52]view-1"),
            &[PropertySpec {
                kind: "VirtualMachine",
                paths: vec!["name", "runtime.host"],
            }],
            Some(500),
        );
        let expected = concat!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
            "<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.host</pathSet></propSet>",
            r#"<objectSet><obj type="ContainerView">session[52]view-1</obj><skip>true</skip>"#,
            r#"<selectSet xsi:type="TraversalSpec"><name>traverseView</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>"#,
            "</objectSet></specSet><options><maxObjects>500</maxObjects></options></RetrievePropertiesEx>"
        );
        assert!(xml.contains(expected), "{xml}");
    }

    #[test]
    fn container_view_lists_types_then_recursive() {
        let xml = create_container_view(
            &MoRef::new("ViewManager", "ViewManager"),
            &MoRef::new("Folder", "group-d1"),
            &["VirtualMachine", "HostSystem"],
        );
        assert!(xml.contains(
            r#"<container type="Folder">group-d1</container><type>VirtualMachine</type><type>HostSystem</type><recursive>true</recursive>"#
        ), "{xml}");
    }
}
