//! Bad input on stable Rust, in every `cargo test`: the proptest twins of the `cargo fuzz`
//! targets (`fuzz/`). Any bytes, and recorded vCenter answers with bytes flipped, cut or
//! spliced, go through every SOAP reader; any text goes through the configuration loader. None
//! may panic, and a configuration error never shows the password it was given. Crashes found by
//! fuzzing are kept below as named regression cases.

use proptest::prelude::*;

use vsphere_backup_exporter::config::Config;
use vsphere_backup_exporter::vsphere::properties::{self, InventoryBuilder};
use vsphere_backup_exporter::vsphere::xml;

/// Every reader of vCenter answers on the same bytes, and the inventory they fill (the same
/// as `fuzz/fuzz_targets/soap_response.rs`).
fn read_everything(data: &[u8]) {
    let _ = xml::read_returnval(data);
    let limits = xml::Limits::default();
    let mut builder = InventoryBuilder::default();
    let _ = properties::read_objects(data, &limits, |object| {
        builder.add_object(object);
        Ok(())
    });
    let mut inventory = builder.finish();
    let _ = properties::read_updates(data, &limits, |_, update| {
        let _ = inventory.apply_changes(&update.obj, update.changes);
        Ok(())
    });
    for vm in inventory.vms.values() {
        for snapshot in vm.snapshots() {
            let _ = vm.snapshot_size_bytes(&snapshot);
        }
        let _ = vm.disk_capacity_bytes();
        let _ = inventory.placement(vm);
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vcenter");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    out
}

/// A recorded answer changed by one edit: bytes overwritten, a cut, a splice of another
/// answer, or a stretch repeated.
fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let all = fixtures();
    let n = all.len();
    (
        0..n,
        0..n,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 1..16),
        0..4u8,
    )
        .prop_map(move |(a, b, i, j, bytes, edit)| {
            let mut doc = all[a].clone();
            let at = i.index(doc.len());
            match edit {
                0 => {
                    for (k, byte) in bytes.iter().enumerate() {
                        if let Some(slot) = doc.get_mut(at + k) {
                            *slot = *byte;
                        }
                    }
                }
                1 => doc.truncate(at),
                2 => {
                    let other = &all[b];
                    doc.truncate(at);
                    doc.extend_from_slice(&other[j.index(other.len())..]);
                }
                _ => {
                    let end = (at + bytes.len() * 8).min(doc.len());
                    let stretch = doc[at..end].to_vec();
                    for _ in 0..bytes.len() {
                        doc.splice(at..at, stretch.iter().copied());
                    }
                }
            }
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn soap_readers_never_panic_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&data);
    }

    #[test]
    fn soap_readers_never_panic_on_damaged_vcenter_answers(data in mutated_fixture()) {
        read_everything(&data);
    }

    #[test]
    fn config_loader_never_panics_nor_shows_the_password(
        before in "[a-z_ :\\[\\]{}\\-\\n\"'#&*!|>0-9.]{0,80}",
        after in "[a-z_ :\\[\\]{}\\-\\n\"'#&*!|>0-9.]{0,80}",
    ) {
        let secret = "s3cret-prop-9b2e";
        let text = format!(
            "{before}vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: {secret}\n{after}"
        );
        if let Err(error) = Config::from_yaml(&text, "prop.yml") {
            let shown = format!("{error} {error:?}");
            prop_assert!(!shown.contains(secret), "{}", shown);
        }
    }
}

/// Inputs that broke a reader once (found by fuzzing or by hand), kept so they never do again.
#[test]
fn regression_inputs_are_read_without_panicking() {
    let cases: &[&[u8]] = &[
        b"",
        b"<",
        b"\xff\xfe\x00<soapenv:Envelope \x80",
        b"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><x><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj><propSet><name>snapshot</name><val><rootSnapshotList><childSnapshotList>",
        b"<a xmlns:p=\"\"><p:b/></a>",
        b"<a>&#0;&#xFFFFFFFF;&unknown;</a>",
    ];
    for case in cases {
        read_everything(case);
    }
}
