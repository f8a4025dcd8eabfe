//! The decoder of `config.hardware.device` (ArrayOfVirtualDevice) into [`Devices`]: for each
//! `VirtualDisk` its key, backing type, disk mode, RDM compatibility mode, file, capacity,
//! sharing, change id and whether it runs on a parent; the SCSI (and NVMe) controllers whose
//! bus is shared; the `VirtualPCIPassthrough` devices. Everything else (NICs, CD drives,
//! video cards, a disk's shares and storage I/O settings, a backing's datastore and uuid) is
//! skipped unread, without allocating: a VM's device list is most of its bytes.
//!
//! One odd value never costs the rest: a key or capacity that is not a number leaves that one
//! field unknown (`None`), an unknown disk mode reads as [`DiskMode::Unknown`], and the other
//! disks and devices are read as sent. The value is never malformed as a whole (a malformed
//! value makes the mirror start over, and the devices of every VM are read).

use std::io::BufRead;

use crate::vsphere::error::ParseError;
use crate::vsphere::model::{Devices, Disk, DiskBacking, DiskMode, RdmMode};
use crate::vsphere::xml::Cursor;

/// `ArrayOfVirtualDevice` (or any element whose children are devices typed by `xsi:type`,
/// such as a whole `config.hardware`: its other children carry no device type and are
/// skipped).
pub(super) fn read_devices<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<Devices, String>, ParseError> {
    cur.enter();
    let mut devices = Devices::default();
    while cur.next_child()? {
        let kind = match cur.xsi_type()? {
            Some("VirtualDisk") => DeviceKind::Disk,
            Some("VirtualPCIPassthrough") => DeviceKind::PciPassthrough,
            // Every controller type is looked into for a `sharedBus`: the SCSI ones
            // (VirtualLsiLogicController, VirtualLsiLogicSASController,
            // ParaVirtualSCSIController, VirtualBusLogicController) and NVMe, which has one
            // since vSphere 8.0 U2. Controllers are a few small elements per VM.
            Some(t) if t.ends_with("Controller") => DeviceKind::Controller,
            // Skipped unread by the next `next_child`.
            _ => continue,
        };
        match kind {
            DeviceKind::Disk => devices.disks.push(read_disk(cur)?),
            DeviceKind::PciPassthrough => devices.pci_passthrough += 1,
            DeviceKind::Controller => {
                if read_shared_bus(cur)? {
                    devices.scsi_shared_bus += 1;
                }
            }
        }
    }
    Ok(Ok(devices))
}

enum DeviceKind {
    Disk,
    PciPassthrough,
    Controller,
}

/// A controller: true when its `sharedBus` is set and is not `noSharing`.
fn read_shared_bus<R: BufRead>(cur: &mut Cursor<R>) -> Result<bool, ParseError> {
    cur.enter();
    let mut shared = false;
    while cur.next_child()? {
        if cur.is("sharedBus") {
            let value = cur.text()?.trim();
            shared = !value.is_empty() && value != "noSharing";
        }
    }
    Ok(shared)
}

/// One `VirtualDisk`.
fn read_disk<R: BufRead>(cur: &mut Cursor<R>) -> Result<Disk, ParseError> {
    cur.enter();
    let mut disk = Disk {
        disk_mode: DiskMode::Unknown,
        ..Default::default()
    };
    let mut bytes = None;
    let mut kb = None;
    while cur.next_child()? {
        match cur.name() {
            b"key" => disk.key = cur.text()?.trim().parse().ok(),
            b"backing" => read_disk_backing(cur, &mut disk)?,
            b"capacityInBytes" => bytes = cur.text()?.trim().parse::<u64>().ok(),
            b"capacityInKB" => kb = cur.text()?.trim().parse::<u64>().ok(),
            _ => {}
        }
    }
    // capacityInBytes 0 means vCenter did not fill it (before 5.5): the KB count then.
    disk.capacity_bytes = match (bytes, kb) {
        (Some(b), _) if b > 0 => Some(b),
        (_, Some(kb)) => kb.checked_mul(1024),
        _ => None,
    };
    Ok(disk)
}

/// A disk's `backing`: its type, and the fields the disk checks read.
fn read_disk_backing<R: BufRead>(cur: &mut Cursor<R>, disk: &mut Disk) -> Result<(), ParseError> {
    disk.backing = match cur.xsi_type()? {
        Some(t) => DiskBacking::from_xsi_type(t),
        None => DiskBacking::Other(String::new()),
    };
    cur.enter();
    while cur.next_child()? {
        match cur.name() {
            b"fileName" => disk.file_name = cur.text()?.to_string(),
            b"diskMode" => disk.disk_mode = DiskMode::parse(cur.text()?),
            b"compatibilityMode" => disk.compatibility_mode = RdmMode::parse(cur.text()?),
            b"sharing" => disk.multi_writer = cur.text()?.trim() == "sharingMultiWriter",
            b"changeId" => disk.change_id = !cur.text()?.trim().is_empty(),
            b"parent" => disk.parent = Some(read_parent_file_name(cur)?),
            _ => {}
        }
    }
    Ok(())
}

/// A backing's `parent`: its `fileName` ("" without one); the rest of the chain (its own
/// parent and on) is skipped.
fn read_parent_file_name<R: BufRead>(cur: &mut Cursor<R>) -> Result<String, ParseError> {
    cur.enter();
    let mut name = String::new();
    while cur.next_child()? {
        if cur.is("fileName") {
            name = cur.text()?.to_string();
        }
    }
    Ok(name)
}
