#!/usr/bin/env bash
# `make test-deb`: builds the Debian package and checks it without installing it on this machine:
# its control data (dpkg-deb -I), its files (dpkg-deb -c), its maintainer scripts (syntax; a fresh
# install enables but never starts the service), and, unpacked into a throwaway root (dpkg -x),
# the binary, the systemd unit (hardening, systemd-analyze verify where available) and the
# example configuration (which must not pass --config.check until filled in).
#
# The package is built from the dev profile so that it costs seconds after `cargo test`;
# `make deb` builds the release one. Set PROFILE=release to check that one.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-dev}
PACKAGE=vsphere-backup-exporter
UNIT=vsphere_backup_exporter.service
OUT=target/debian-test

fail() {
    echo "test-deb: FAIL: $*" >&2
    exit 1
}

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing (apt-get install dpkg)"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
rm -rf "$OUT"
mkdir -p "$OUT"
cargo deb --profile "$PROFILE" --fast --output "$OUT/" >"$OUT/build.log" 2>&1 ||
    { cat "$OUT/build.log" >&2; fail "cargo deb"; }
deb="$OUT/${PACKAGE}_${version}_${arch}.deb"
[ -f "$deb" ] || fail "expected $deb; got: $(ls "$OUT")"

# Control data.
info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$PACKAGE" ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
field Depends | grep -q 'adduser' || fail "Depends lacks adduser: $(field Depends)"
field Depends | grep -q 'libc6' || fail "Depends lacks libc6 (\$auto): $(field Depends)"
for member in conffiles postinst postrm prerm; do
    grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +(\* +)?$member( |\$)" <<<"$info" ||
        fail "control archive lacks $member"
done

# Files, owners and modes.
listing=$(dpkg-deb -c "$deb")
expect_file() { # mode path
    grep -qE "^$1 (root/root|0/0) +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" <<<"$listing" ||
        fail "missing or wrong mode/owner: $1 $2"
}
expect_file '-rwxr-xr-x' 'usr/bin/vsphere_backup_exporter'
expect_file '-rw-r--r--' "usr/lib/systemd/system/$UNIT"
expect_file '-rw-r--r--' 'etc/vsphere_backup_exporter/vsphere_backup_exporter.yml'
expect_file '-rw-r--r--' 'etc/default/vsphere_backup_exporter'
expect_file '-rw-r--r--' 'usr/share/doc/vsphere-backup-exporter/README.md'
expect_file '-rw-r--r--' 'usr/share/doc/vsphere-backup-exporter/CHANGELOG.md'
for doc in docs/*.md; do
    expect_file '-rw-r--r--' "usr/share/doc/vsphere-backup-exporter/$doc"
done

# Maintainer scripts: valid sh; conffiles; a system user; enabled, never started on install.
control=$(mktemp -d)
root=$(mktemp -d)
trap 'rm -rf "$control" "$root"' EXIT
dpkg-deb -e "$deb" "$control"
for script in postinst postrm prerm; do
    sh -n "$control/$script" || fail "$script is not valid sh"
done
diff <(sort "$control/conffiles") <(printf '%s\n' /etc/default/vsphere_backup_exporter \
    /etc/vsphere_backup_exporter/vsphere_backup_exporter.yml) ||
    fail "conffiles differ"
grep -q 'adduser --system' "$control/postinst" || fail "postinst creates no system user"
grep -q "deb-systemd-helper enable $UNIT" "$control/postinst" || fail "postinst does not enable"
if grep -qE "deb-systemd-invoke (start|\\\$_dh_action) " "$control/postinst"; then
    fail "postinst starts the service on a fresh install"
fi
grep -q "deb-systemd-invoke try-restart $UNIT" "$control/postinst" ||
    fail "postinst does not restart a running service on upgrade"
grep -q "deb-systemd-invoke stop $UNIT" "$control/prerm" || fail "prerm does not stop the service"

# Unpacked into a throwaway root.
dpkg -x "$deb" "$root"
"$root/usr/bin/vsphere_backup_exporter" --version | grep -q "version $version" ||
    fail "the packaged binary does not run"
# The shipped README and docs link each other by relative paths: each must be in the package.
doc_dir="$root/usr/share/doc/vsphere-backup-exporter"
for page in "$doc_dir"/README.md "$doc_dir"/docs/*.md; do
    for link in $(grep -oE '\]\([^)#:]+(#[^)]*)?\)' "$page" | sed -E 's/^\]\(([^)#]*).*/\1/' | sort -u); do
        [ -e "$(dirname "$page")/$link" ] || fail "${page#"$root"/} links $link, which the package lacks"
    done
done
unit="$root/usr/lib/systemd/system/$UNIT"
for line in 'User=vsphere_backup_exporter' 'ProtectSystem=strict' 'ProtectHome=yes' \
    'NoNewPrivileges=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'LoadCredential=vcenter.password:/etc/vsphere_backup_exporter/vcenter.password' \
    'ConditionPathExists=/etc/vsphere_backup_exporter/vcenter.password' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'EnvironmentFile=-/etc/default/vsphere_backup_exporter'; do
    grep -qxF "$line" "$unit" || fail "unit lacks: $line"
done
grep -qE '^ExecStartPre=/usr/bin/vsphere_backup_exporter --config.check ' "$unit" ||
    fail "unit does not check the configuration before starting"
# The example configuration names the credential the unit loads.
grep -q '/run/credentials/vsphere_backup_exporter.service/vcenter.password' \
    "$root/etc/vsphere_backup_exporter/vsphere_backup_exporter.yml" ||
    fail "example config does not read the password from the unit's credential"

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is missing (make deps installs the systemd package)"
{
    # verify resolves ExecStart= on this machine: check a copy whose commands point at the
    # unpacked binary. It prints a line per problem (and exits 0 on most), so any output fails.
    verify_dir="$root/verify"
    mkdir -p "$verify_dir"
    sed "s#/usr/bin/vsphere_backup_exporter#$root/usr/bin/vsphere_backup_exporter#g" "$unit" \
        >"$verify_dir/$UNIT"
    verify_log=$(systemd-analyze verify "$verify_dir/$UNIT" 2>&1) ||
        fail "systemd-analyze verify: $verify_log"
    [ -z "$verify_log" ] || fail "systemd-analyze verify: $verify_log"
    exposure=$(systemd-analyze security --offline=true "$verify_dir/$UNIT" 2>/dev/null |
        sed -n 's/^→ Overall exposure level for [^:]*: //p')
    echo "test-deb: systemd-analyze verify: clean; security exposure: ${exposure:-unknown}"
}

# The example configuration is not a working one, so the service would refuse to start on it.
if "$root/usr/bin/vsphere_backup_exporter" --config.check \
    --config.file="$root/etc/vsphere_backup_exporter/vsphere_backup_exporter.yml" >/dev/null 2>&1; then
    fail "the commented example configuration passes --config.check"
fi
# Filled in as the comments say (password from the credential path replaced by a file here), it is.
sed -e 's/^# //' -e 's/^#//' "$root/etc/vsphere_backup_exporter/vsphere_backup_exporter.yml" |
    awk '/^vcenters:/ {on=1} on' |
    grep -v 'ca_file' |
    sed "s#/run/credentials/vsphere_backup_exporter.service/vcenter.password#$root/vcenter.password#" \
        >"$root/filled.yml"
install -m 600 /dev/null "$root/vcenter.password"
echo 'test-only' >"$root/vcenter.password"
"$root/usr/bin/vsphere_backup_exporter" --config.check --config.file="$root/filled.yml" >/dev/null ||
    fail "the example configuration, filled in, does not pass --config.check"

size=$(du -h "$deb" | cut -f1)
echo "test-deb: OK: $deb ($size, profile $PROFILE)"
