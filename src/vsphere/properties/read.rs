//! An answer's objects: a WaitForUpdatesEx ObjectUpdate or a RetrievePropertiesEx
//! ObjectContent read into an [`ObjectUpdate`] (its kind, its object, its property changes,
//! and whether a `missingSet` says the session is gone), handed to the caller one by one as
//! the answer streams in ([`read_updates`], [`read_objects`]).
//!
//! It owns the structure around the values, not the values (see [`super::value`]) nor what a
//! change does to the inventory (see [`super::apply`]).

use std::io::BufRead;

use super::value::{Value, read_value};
use super::{Property, path_of, property_of};
use crate::vsphere::error::ParseError;
use crate::vsphere::model::MoRef;
use crate::vsphere::xml::{self, Cursor, Limits, UpdateSetHead};

/// What a PropertyChange does (`op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOp {
    Assign,
    Remove,
    IndirectRemove,
    /// `add` and anything else: a change inside an array, which the mirror cannot apply.
    Other(String),
}

/// One PropertyChange (or, in an ObjectContent, one DynamicProperty as an assignment).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The property, or the path when the exporter does not read it.
    pub property: Result<Property, String>,
    pub op: ChangeOp,
    /// `None`: no value (unset); `Some(Err)`: a value that did not parse, with why.
    pub value: Option<Result<Value, String>>,
}

impl Change {
    /// The path, for messages.
    pub fn path(&self) -> &str {
        match &self.property {
            Ok(p) => path_of(*p),
            Err(path) => path,
        }
    }
}

/// `kind` of an ObjectUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Enter,
    Modify,
    Leave,
}

/// One ObjectUpdate of a WaitForUpdatesEx answer, or one ObjectContent of a
/// RetrievePropertiesEx answer (an `enter` with its properties assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectUpdate {
    pub kind: UpdateKind,
    pub obj: MoRef,
    pub changes: Vec<Change>,
    /// The path of a property vCenter could not read because the session is gone
    /// (a `missingSet` with a NotAuthenticated fault).
    pub session_lost: Option<String>,
}

/// Reads an `objectSet` (ObjectUpdate) or `objects` (ObjectContent) element that `cur` has
/// just returned, to its end.
pub fn read_object<R: BufRead>(cur: &mut Cursor<R>) -> Result<ObjectUpdate, ParseError> {
    cur.enter();
    let mut kind = UpdateKind::Enter;
    let mut obj: Option<MoRef> = None;
    let mut changes = Vec::new();
    let mut session_lost = None;
    while cur.next_child()? {
        match cur.name() {
            b"kind" => {
                kind = match cur.text()?.trim() {
                    "enter" => UpdateKind::Enter,
                    "modify" => UpdateKind::Modify,
                    "leave" => UpdateKind::Leave,
                    other => {
                        return Err(ParseError::Malformed(format!(
                            "unknown ObjectUpdate kind {other:?}"
                        )));
                    }
                }
            }
            b"obj" => obj = cur.moref()?,
            // The WSDL's sequence puts `obj` before the properties, so their type is known.
            b"changeSet" | b"propSet" => {
                let kind = obj.as_ref().map_or("", |o| o.kind.as_str());
                changes.push(read_change(cur, kind)?);
            }
            b"missingSet" => {
                if let Some(path) = read_missing(cur)? {
                    session_lost = Some(path);
                }
            }
            _ => {}
        }
    }
    let obj = obj.ok_or_else(|| ParseError::Malformed("an update without its object".into()))?;
    Ok(ObjectUpdate {
        kind,
        obj,
        changes,
        session_lost,
    })
}

/// A PropertyChange (`name`, `op`, `val`) or DynamicProperty (`name`, `val`).
fn read_change<R: BufRead>(cur: &mut Cursor<R>, kind: &str) -> Result<Change, ParseError> {
    cur.enter();
    let mut change = Change {
        property: Err(String::new()),
        op: ChangeOp::Assign,
        value: None,
    };
    while cur.next_child()? {
        match cur.name() {
            b"name" => {
                let path = cur.text()?.trim();
                change.property = property_of(kind, path).ok_or_else(|| path.to_string());
            }
            b"op" => {
                change.op = match cur.text()?.trim() {
                    "assign" => ChangeOp::Assign,
                    "remove" => ChangeOp::Remove,
                    "indirectRemove" => ChangeOp::IndirectRemove,
                    other => ChangeOp::Other(other.to_string()),
                }
            }
            b"val" => {
                // A path the exporter does not read: its value is skipped unread.
                if let Ok(property) = change.property {
                    change.value = Some(read_value(cur, property)?);
                }
            }
            _ => {}
        }
    }
    Ok(change)
}

/// A `missingSet`: the path when its fault is NotAuthenticated.
fn read_missing<R: BufRead>(cur: &mut Cursor<R>) -> Result<Option<String>, ParseError> {
    cur.enter();
    let mut path = String::new();
    let mut not_authenticated = false;
    while cur.next_child()? {
        match cur.name() {
            b"path" => path = cur.text()?.trim().to_string(),
            // LocalizedMethodFault: its `fault` holds the MethodFault by its xsi:type.
            b"fault" => {
                cur.enter();
                while cur.next_child()? {
                    if cur.is("fault") {
                        let xsi_type = cur.xsi_type()?.map(str::to_string);
                        let kind = xsi_type.as_deref().map_or(cur.name(), str::as_bytes);
                        not_authenticated |= kind == b"NotAuthenticated";
                    }
                }
            }
            _ => {}
        }
    }
    Ok(not_authenticated.then_some(path))
}

/// Reads a WaitForUpdatesEx answer, handing each ObjectUpdate with the id of its filter to
/// `on_update` as soon as it is read.
pub fn read_updates<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_update: impl FnMut(&str, ObjectUpdate) -> Result<(), ParseError>,
) -> Result<Option<UpdateSetHead>, ParseError> {
    xml::read_update_set(input, limits, |filter, cur| {
        let update = read_object(cur)?;
        on_update(filter, update)
    })
}

/// Reads a RetrievePropertiesEx (or ContinueRetrievePropertiesEx) answer, handing each object
/// to `on_object` as soon as it is read; returns the paging token when there is one.
pub fn read_objects<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_object: impl FnMut(ObjectUpdate) -> Result<(), ParseError>,
) -> Result<Option<String>, ParseError> {
    xml::read_retrieve_result(input, limits, |cur| {
        let object = read_object(cur)?;
        on_object(object)
    })
}
