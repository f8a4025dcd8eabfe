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

/// `CurrentTime` of the ServiceInstance: the cheapest call there is, the mirror's heartbeat.
pub fn current_time() -> String {
    envelope(&format!(
        r#"<CurrentTime xmlns="{VIM25}"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>"#
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

/// The `propSet` elements of a PropertyFilterSpec.
fn prop_sets(props: &[PropertySpec]) -> String {
    let mut out = String::new();
    for p in props {
        out.push_str("<propSet>");
        out.push_str(&text("type", p.kind));
        for path in &p.paths {
            out.push_str(&text("pathSet", path));
        }
        out.push_str("</propSet>");
    }
    out
}

/// The content of a PropertyFilterSpec: `props` of every object of a ContainerView or
/// ListView (the traversal follows the view's `view` property).
fn filter_spec(view: &MoRef, props: &[PropertySpec]) -> String {
    let mut spec = prop_sets(props);
    spec.push_str("<objectSet>");
    spec.push_str(&moref("obj", view));
    spec.push_str("<skip>true</skip>");
    // Writing to a String cannot fail.
    let _ = write!(
        spec,
        r#"<selectSet xsi:type="TraversalSpec"><name>traverseView</name><type>{}</type><path>view</path><skip>false</skip></selectSet>"#,
        escape(view.kind.as_str())
    );
    spec.push_str("</objectSet>");
    spec
}

/// The content of a PropertyFilterSpec over a view, plus `objects` themselves (no traversal;
/// the CustomFieldsManager, whose definitions are in no view).
fn filter_spec_with(view: &MoRef, props: &[PropertySpec], objects: &[MoRef]) -> String {
    let mut spec = filter_spec(view, props);
    for o in objects {
        spec.push_str("<objectSet>");
        spec.push_str(&moref("obj", o));
        spec.push_str("<skip>false</skip></objectSet>");
    }
    spec
}

/// `CreateFilter` of `props` over a view and over `objects`, reporting whole property values.
pub fn create_filter_with_objects(
    collector: &MoRef,
    view: &MoRef,
    props: &[PropertySpec],
    objects: &[MoRef],
) -> String {
    envelope(&format!(
        r#"<CreateFilter xmlns="{VIM25}">{}<spec>{}</spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        moref("_this", collector),
        filter_spec_with(view, props, objects)
    ))
}

/// `RetrievePropertiesEx` of `props` on every object of a view. `max_objects` asks for pages
/// of that size (vCenter may page smaller; `None` leaves the server's default).
pub fn retrieve_properties_ex(
    collector: &MoRef,
    view: &MoRef,
    props: &[PropertySpec],
    max_objects: Option<u32>,
) -> String {
    let mut body = format!(r#"<RetrievePropertiesEx xmlns="{VIM25}">"#);
    body.push_str(&moref("_this", collector));
    body.push_str("<specSet>");
    body.push_str(&filter_spec(view, props));
    body.push_str("</specSet><options>");
    if let Some(n) = max_objects {
        let _ = write!(body, "<maxObjects>{n}</maxObjects>");
    }
    body.push_str("</options></RetrievePropertiesEx>");
    envelope(&body)
}

/// `RetrievePropertiesEx` of `props` on the given objects themselves (no traversal).
pub fn retrieve_properties_of(
    collector: &MoRef,
    objects: &[MoRef],
    props: &[PropertySpec],
) -> String {
    let mut body = format!(r#"<RetrievePropertiesEx xmlns="{VIM25}">"#);
    body.push_str(&moref("_this", collector));
    body.push_str("<specSet>");
    body.push_str(&prop_sets(props));
    for o in objects {
        body.push_str("<objectSet>");
        body.push_str(&moref("obj", o));
        body.push_str("<skip>false</skip></objectSet>");
    }
    body.push_str("</specSet><options></options></RetrievePropertiesEx>");
    envelope(&body)
}

/// `RetrievePropertiesEx` of `props` on the given objects themselves, an object that no longer
/// exists left out of the answer (`reportMissingObjectsInResults`) rather than failing the call
/// for all.
pub fn retrieve_properties_of_existing(
    collector: &MoRef,
    objects: &[MoRef],
    props: &[PropertySpec],
) -> String {
    retrieve_properties_of(collector, objects, props).replacen(
        "</specSet>",
        "<reportMissingObjectsInResults>true</reportMissingObjectsInResults></specSet>",
        1,
    )
}

/// `CreateFilter` of `props` on the given objects themselves (no traversal), reporting whole
/// property values.
pub fn create_filter_of(collector: &MoRef, objects: &[MoRef], props: &[PropertySpec]) -> String {
    let mut spec = prop_sets(props);
    for o in objects {
        spec.push_str("<objectSet>");
        spec.push_str(&moref("obj", o));
        spec.push_str("<skip>false</skip></objectSet>");
    }
    envelope(&format!(
        r#"<CreateFilter xmlns="{VIM25}">{}<spec>{spec}</spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        moref("_this", collector),
    ))
}

/// `CreatePropertyCollector`: a collector of our own, so our filters and update versions are
/// apart from every other client's.
pub fn create_property_collector(collector: &MoRef) -> String {
    envelope(&format!(
        r#"<CreatePropertyCollector xmlns="{VIM25}">{}</CreatePropertyCollector>"#,
        moref("_this", collector)
    ))
}

/// `DestroyPropertyCollector` (its filters go with it).
pub fn destroy_property_collector(collector: &MoRef) -> String {
    envelope(&format!(
        r#"<DestroyPropertyCollector xmlns="{VIM25}">{}</DestroyPropertyCollector>"#,
        moref("_this", collector)
    ))
}

/// `CreateFilter` of `props` over a view, reporting whole property values.
pub fn create_filter(collector: &MoRef, view: &MoRef, props: &[PropertySpec]) -> String {
    envelope(&format!(
        r#"<CreateFilter xmlns="{VIM25}">{}<spec>{}</spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        moref("_this", collector),
        filter_spec(view, props)
    ))
}

/// `WaitForUpdatesEx` from `version` ("" for the whole current state), waiting at most
/// `max_wait_seconds`, with at most `max_object_updates` objects an answer.
pub fn wait_for_updates_ex(
    collector: &MoRef,
    version: &str,
    max_wait_seconds: u32,
    max_object_updates: u32,
) -> String {
    envelope(&format!(
        r#"<WaitForUpdatesEx xmlns="{VIM25}">{}{}<options><maxWaitSeconds>{max_wait_seconds}</maxWaitSeconds><maxObjectUpdates>{max_object_updates}</maxObjectUpdates></options></WaitForUpdatesEx>"#,
        moref("_this", collector),
        text("version", version)
    ))
}

/// `CreateListView` over `objects`.
pub fn create_list_view(view_manager: &MoRef, objects: &[MoRef]) -> String {
    let list: String = objects.iter().map(|o| moref("obj", o)).collect();
    envelope(&format!(
        r#"<CreateListView xmlns="{VIM25}">{}{list}</CreateListView>"#,
        moref("_this", view_manager)
    ))
}

/// `ModifyListView`: objects to add and to remove.
pub fn modify_list_view(view: &MoRef, add: &[MoRef], remove: &[MoRef]) -> String {
    let add: String = add.iter().map(|o| moref("add", o)).collect();
    let remove: String = remove.iter().map(|o| moref("remove", o)).collect();
    envelope(&format!(
        r#"<ModifyListView xmlns="{VIM25}">{}{add}{remove}</ModifyListView>"#,
        moref("_this", view)
    ))
}

/// `ContinueRetrievePropertiesEx` with the token of the previous page.
pub fn continue_retrieve_properties_ex(collector: &MoRef, token: &str) -> String {
    envelope(&format!(
        r#"<ContinueRetrievePropertiesEx xmlns="{VIM25}">{}{}</ContinueRetrievePropertiesEx>"#,
        moref("_this", collector),
        text("token", token)
    ))
}

/// `CancelRetrievePropertiesEx`: the rest of a paged result is not wanted.
pub fn cancel_retrieve_properties_ex(collector: &MoRef, token: &str) -> String {
    envelope(&format!(
        r#"<CancelRetrievePropertiesEx xmlns="{VIM25}">{}{}</CancelRetrievePropertiesEx>"#,
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
        assert!(
            xml.contains("<userName>a&lt;b@vsphere.local</userName>"),
            "{xml}"
        );
        assert!(
            xml.contains("<password>p&amp;ss&quot;&lt;&gt;</password>"),
            "{xml}"
        );
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
