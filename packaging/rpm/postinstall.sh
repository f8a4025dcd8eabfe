# RPM %post ($1: 1 on install, 2 on upgrade): enable, never start a fresh install (the unit
# waits for its password file and checks its configuration first); restart on upgrade only a
# service that was running.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    systemctl enable vsphere_backup_exporter.service >/dev/null 2>&1 || :
else
    systemctl try-restart vsphere_backup_exporter.service >/dev/null 2>&1 || :
fi
exit 0
