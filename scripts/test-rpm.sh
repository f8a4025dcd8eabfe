#!/usr/bin/env bash
# `make test-rpm`: builds the RPM package from the dev build (a stripped copy of the binary, so
# it costs seconds) and checks it without installing it: its files, modes and owners, config
# files kept on upgrade, requirements and scriptlets (`rpm -qp`), then its payload unpacked into
# a throwaway root (`rpm2archive | tar`): the binary runs and the unit is the Debian package's.
# Needs `rpm` (make deps installs it); fails naming it when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=vsphere-backup-exporter
STAGE=target/rpm-test

fail() {
    echo "test-rpm: FAIL: $*" >&2
    exit 1
}

command -v rpm >/dev/null && command -v rpm2archive >/dev/null ||
    fail "rpm is missing (make deps installs it)"
command -v cargo-generate-rpm >/dev/null || cargo install cargo-generate-rpm --locked

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
cargo build --bin vsphere_backup_exporter >/dev/null 2>&1 || fail "cargo build"
rm -rf "$STAGE"
mkdir -p "$STAGE/release" "$STAGE/out"
# cargo-generate-rpm reads target/release/… from <target-dir>/release/: a stripped dev binary.
strip -s -o "$STAGE/release/vsphere_backup_exporter" target/debug/vsphere_backup_exporter
cargo generate-rpm --target-dir "$STAGE" -o "$STAGE/out/" >"$STAGE/build.log" 2>&1 ||
    { cat "$STAGE/build.log" >&2; fail "cargo generate-rpm"; }
rpm_file=$(ls "$STAGE"/out/*.rpm)
case "$(basename "$rpm_file")" in
    "$PACKAGE-$version-1."*".rpm") ;;
    *) fail "unexpected file name $rpm_file" ;;
esac

q() { rpm -qp "$@" "$rpm_file" 2>/dev/null; }
[ "$(q --queryformat '%{NAME} %{VERSION}')" = "$PACKAGE $version" ] || fail "name/version"
listing=$(q --queryformat '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]')
expect() {
    grep -qxF -- "$1" <<<"$listing" || fail "missing: $1 (have: $listing)"
}
expect '-rwxr-xr-x root:root /usr/bin/vsphere_backup_exporter'
expect '-rw-r--r-- root:root /usr/lib/systemd/system/vsphere_backup_exporter.service'
expect '-rw-r----- root:vsphere_backup_exporter /etc/vsphere_backup_exporter/vsphere_backup_exporter.yml'
expect '-rw-r--r-- root:root /etc/default/vsphere_backup_exporter'
for doc in README.md CHANGELOG.md docs/*.md; do
    expect "-rw-r--r-- root:root /usr/share/doc/vsphere-backup-exporter/$doc"
done
configs=$(q --configfiles | sort)
[ "$configs" = "$(printf '%s\n' /etc/default/vsphere_backup_exporter \
    /etc/vsphere_backup_exporter/vsphere_backup_exporter.yml)" ] || fail "config files: $configs"
q --requires | grep -q '^shadow-utils' || fail "does not require shadow-utils (useradd)"
scripts=$(q --scripts)
grep -q 'useradd --system' <<<"$scripts" || fail "%pre creates no system user"
grep -q 'systemctl enable vsphere_backup_exporter.service' <<<"$scripts" || fail "%post does not enable"
if grep -qE 'systemctl (start|restart) ' <<<"$scripts"; then
    fail "a scriptlet starts the service"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rpm2archive - <"$rpm_file" | tar -xzf - -C "$root"
"$root/usr/bin/vsphere_backup_exporter" --version | grep -q "version $version" ||
    fail "the packaged binary does not run"
cmp -s "$root/usr/lib/systemd/system/vsphere_backup_exporter.service" \
    packaging/vsphere_backup_exporter.service || fail "the unit differs from packaging/"

echo "test-rpm: OK: $rpm_file ($(du -h "$rpm_file" | cut -f1), dev build)"
