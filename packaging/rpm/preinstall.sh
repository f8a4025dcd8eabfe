# RPM %pre: the system user and group the service runs as.
getent group vsphere_backup_exporter >/dev/null ||
    groupadd --system vsphere_backup_exporter
getent passwd vsphere_backup_exporter >/dev/null ||
    useradd --system --gid vsphere_backup_exporter --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin --comment "vSphere backup exporter" vsphere_backup_exporter
exit 0
