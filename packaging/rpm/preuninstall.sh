# RPM %preun ($1: 0 on erase, 1 on upgrade): stop and disable only when erased.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now vsphere_backup_exporter.service >/dev/null 2>&1 || :
fi
exit 0
