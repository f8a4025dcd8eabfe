//! The oracle: one full retrieval of a vCenter's inventory with `RetrievePropertiesEx` over a
//! ContainerView (following `ContinueRetrievePropertiesEx` tokens), then the files and devices
//! of the VMs with snapshots over a ListView, the extraConfig of Windows guests over another
//! and the custom field definitions. Tests compare the mirror with it. It is built from
//! the client's public calls only and is not what the exporter runs: the exporter follows
//! vCenter with the mirror (`WaitForUpdatesEx`), which is what the fake-vCenter tests drive.

use vsphere_backup_exporter::vsphere::client::{ChannelReader, Session};
use vsphere_backup_exporter::vsphere::error::{CallError, Error, ParseError};
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::properties::backup::is_windows_vm;
use vsphere_backup_exporter::vsphere::properties::{
    self, InventoryBuilder, VIEW_TYPES, custom_fields_spec, property_specs, snapshot_vm_specs,
    vms_with_snapshots, windows_vm_specs,
};
use vsphere_backup_exporter::vsphere::{Client, Inventory, soap, xml};

/// The whole inventory, logging in first when needed and once more when vCenter no longer
/// knows the session.
pub async fn retrieve_inventory(client: &Client) -> Result<Inventory, Error> {
    let mut relogged = false;
    loop {
        let session = client.session().await?;
        match retrieve_with(client, &session).await {
            Err(e) if e.failure.is_not_authenticated() && !relogged => {
                client.invalidate(&session).await;
                relogged = true;
            }
            other => return other,
        }
    }
}

async fn retrieve_with(client: &Client, session: &Session) -> Result<Inventory, Error> {
    let sc = &session.content;
    let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, VIEW_TYPES);
    let view = create_view(client, session, "CreateContainerView", body).await?;
    let builder = InventoryBuilder::default();
    let result = retrieve_view(client, session, &view, &property_specs(), builder).await;
    destroy_view(client, session, &view).await;
    let mut builder = result?;
    let wanted = vms_with_snapshots(builder.inventory());
    if !wanted.is_empty() {
        let body = soap::create_list_view(&sc.view_manager, &wanted);
        let list = create_view(client, session, "CreateListView", body).await?;
        let result = retrieve_view(client, session, &list, &snapshot_vm_specs(), builder).await;
        destroy_view(client, session, &list).await;
        builder = result?;
    }
    // As the mirror where vCenter refuses the keyed path of disk.EnableUUID (the simulator
    // does): the extraConfig of Windows guests, and the custom field definitions.
    let windows: Vec<MoRef> = builder
        .inventory()
        .vms
        .values()
        .filter(|vm| is_windows_vm(vm))
        .map(|vm| MoRef::new("VirtualMachine", &vm.id))
        .collect();
    if !windows.is_empty() {
        let body = soap::create_list_view(&sc.view_manager, &windows);
        let list = create_view(client, session, "CreateListView", body).await?;
        let result = retrieve_view(client, session, &list, &windows_vm_specs(), builder).await;
        destroy_view(client, session, &list).await;
        builder = result?;
    }
    if let Some(cfm) = &sc.custom_fields_manager {
        let body = soap::retrieve_properties_of(
            &sc.property_collector,
            std::slice::from_ref(cfm),
            &[custom_fields_spec()],
        );
        let (_, built) = client
            .call_streaming(
                "RetrievePropertiesEx",
                session,
                body,
                None,
                builder,
                read_objects,
            )
            .await?;
        builder = built;
    }
    Ok(builder.finish())
}

async fn create_view(
    client: &Client,
    session: &Session,
    call: &'static str,
    body: String,
) -> Result<MoRef, Error> {
    let bytes = client.call(call, session, body).await?;
    let fail = |failure| Error {
        vcenter: client.vcenter().to_owned(),
        call,
        failure,
        sent: None,
    };
    let rv = xml::read_returnval(&bytes).map_err(|e| fail(e.into()))?;
    rv.moref()
        .ok_or_else(|| fail(CallError::Malformed("no view in the answer".into())))
}

async fn destroy_view(client: &Client, session: &Session, view: &MoRef) {
    let _ = client
        .call("DestroyView", session, soap::destroy_view(view))
        .await;
}

async fn retrieve_view(
    client: &Client,
    session: &Session,
    view: &MoRef,
    specs: &[soap::PropertySpec],
    builder: InventoryBuilder,
) -> Result<InventoryBuilder, Error> {
    let pc = &session.content.property_collector;
    let mut call = "RetrievePropertiesEx";
    let mut body = soap::retrieve_properties_ex(pc, view, specs, None);
    let mut builder = builder;
    loop {
        let (token, mut built) = client
            .call_streaming(call, session, body, None, builder, read_objects)
            .await?;
        if let Some(path) = built.session_lost.take() {
            return Err(Error {
                vcenter: client.vcenter().to_owned(),
                call,
                failure: CallError::SessionLost(path),
                sent: None,
            });
        }
        builder = built;
        let Some(token) = token else {
            return Ok(builder);
        };
        call = "ContinueRetrievePropertiesEx";
        body = soap::continue_retrieve_properties_ex(pc, &token);
    }
}

fn read_objects(
    input: ChannelReader,
    builder: &mut InventoryBuilder,
) -> Result<Option<String>, ParseError> {
    let limits = input.limits();
    properties::read_objects(input, &limits, |object| {
        builder.add_object(object);
        Ok(())
    })
}
