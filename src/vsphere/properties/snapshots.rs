//! The decoders of what the snapshot checks read of a VM: its snapshot trees (`snapshot`,
//! `VirtualMachineSnapshotInfo`) and its files and disk chains (`layoutEx`). With the devices
//! ([`super::devices`]) these are most of the bytes of an answer about VMs with snapshots,
//! read straight from the XML events into the model.
//!
//! It owns these values' decoding only; [`super::value`] says which property each is.

use std::io::BufRead;

use super::{Bad, entity_name, parse_bool, parse_datetime, parse_num, truncated};
use crate::vsphere::error::ParseError;
use crate::vsphere::model::{
    DiskLayout, LayoutEx, LayoutFile, SnapshotInfo, SnapshotLayout, SnapshotTree,
};
use crate::vsphere::xml::Cursor;

/// `VirtualMachineSnapshotInfo`.
pub(super) fn read_snapshot_info<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotInfo, String>, ParseError> {
    cur.enter();
    let mut info = SnapshotInfo::default();
    let mut bad = Bad::default();
    while cur.next_child()? {
        match cur.name() {
            b"currentSnapshot" => info.current_snapshot = Some(cur.text()?.trim().to_string()),
            b"rootSnapshotList" => {
                if let Some(tree) = bad.keep(read_snapshot_tree(cur)?) {
                    info.root_snapshot_list.push(tree);
                }
            }
            _ => {}
        }
    }
    Ok(bad.or(info))
}

/// `VirtualMachineSnapshotTree`, children included. Trees are as deep as a VM's snapshot
/// chain (vSphere allows 32 levels); the cursor bounds the depth of any document.
fn read_snapshot_tree<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotTree, String>, ParseError> {
    cur.enter();
    let mut tree = SnapshotTree::default();
    let mut bad = Bad::default();
    let mut snapshot = None;
    let mut created = None;
    while cur.next_child()? {
        match cur.name() {
            b"snapshot" => snapshot = cur.moref()?.map(|r| r.value),
            b"name" => tree.name = entity_name(cur.text()?),
            b"description" => tree.description = cur.text()?.to_string(),
            b"createTime" => {
                let text = cur.text()?;
                created = parse_datetime(text);
                if created.is_none() {
                    bad.note(|| format!("createTime is not a time: {:?}", truncated(text)));
                }
            }
            b"state" => tree.state = cur.text()?.trim().to_string(),
            b"quiesced" => {
                let quiesced = parse_bool(cur.text()?);
                tree.quiesced = bad.keep(quiesced).unwrap_or(false);
            }
            b"childSnapshotList" => {
                if let Some(child) = bad.keep(read_snapshot_tree(cur)?) {
                    tree.child_snapshot_list.push(child);
                }
            }
            _ => {}
        }
    }
    match (snapshot, created) {
        (Some(snapshot), Some(seconds)) => {
            tree.snapshot = snapshot;
            tree.create_time_seconds = seconds;
        }
        (None, _) => bad.note(|| "a snapshot tree without its snapshot".into()),
        (_, None) => bad.note(|| "a snapshot tree without its createTime".into()),
    }
    Ok(bad.or(tree))
}

/// `VirtualMachineFileLayoutEx`, asked for whole.
pub(super) fn read_layout_ex<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<LayoutEx, String>, ParseError> {
    cur.enter();
    let mut layout = LayoutEx::default();
    let mut bad = Bad::default();
    while cur.next_child()? {
        match cur.name() {
            b"file" => {
                if let Some(file) = bad.keep(read_layout_file(cur)?) {
                    layout.file.push(file);
                }
            }
            b"disk" => {
                if let Some(disk) = bad.keep(read_disk_layout(cur)?) {
                    layout.disk.push(disk);
                }
            }
            b"snapshot" => {
                if let Some(snapshot) = bad.keep(read_snapshot_layout(cur)?) {
                    layout.snapshot.push(snapshot);
                }
            }
            _ => {}
        }
    }
    Ok(bad.or(layout))
}

/// `VirtualMachineFileLayoutExFileInfo`. A missing or odd size counts as 0: the file is
/// still in the chains.
fn read_layout_file<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<LayoutFile, String>, ParseError> {
    cur.enter();
    let mut file = LayoutFile::default();
    let mut key = Err("a file without its key".to_string());
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = parse_num("file key", cur.text()?),
            b"name" => file.name = cur.text()?.to_string(),
            b"type" => file.file_type = cur.text()?.trim().to_string(),
            b"size" => file.size = cur.text()?.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    Ok(key.map(|key| LayoutFile { key, ..file }))
}

/// `VirtualMachineFileLayoutExDiskLayout`: a disk's key and its chain of units.
fn read_disk_layout<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<DiskLayout, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut key = Err("a disk layout without its key".to_string());
    let mut chain = Vec::new();
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = parse_num("disk key", cur.text()?),
            b"chain" => {
                cur.enter();
                let mut unit = Vec::new();
                while cur.next_child()? {
                    if cur.is("fileKey")
                        && let Some(k) = bad.keep(parse_num("fileKey", cur.text()?))
                    {
                        unit.push(k);
                    }
                }
                chain.push(unit);
            }
            _ => {}
        }
    }
    let key = bad.keep(key);
    Ok(bad.or(()).map(|()| DiskLayout {
        key: key.unwrap_or_default(),
        chain,
    }))
}

/// `VirtualMachineFileLayoutExSnapshotLayout`.
fn read_snapshot_layout<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotLayout, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut key = None;
    let mut data_key = Err("a snapshot layout without its dataKey".to_string());
    let mut disk = Vec::new();
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = cur.moref()?.map(|r| r.value),
            b"dataKey" => data_key = parse_num("dataKey", cur.text()?),
            b"disk" => {
                if let Some(d) = bad.keep(read_disk_layout(cur)?) {
                    disk.push(d);
                }
            }
            _ => {}
        }
    }
    let data_key = bad.keep(data_key);
    let Some(key) = key else {
        return Ok(Err("a snapshot layout without its key".into()));
    };
    Ok(bad.or(()).map(|()| SnapshotLayout {
        key,
        data_key: data_key.unwrap_or_default(),
        disk,
    }))
}
