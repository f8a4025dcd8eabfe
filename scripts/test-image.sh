#!/usr/bin/env bash
# `make test-image`: builds the image (scripts/image.sh), then checks what is in it, from the
# docker-archive that `make image` writes (the file `docker load` takes):
#   - its configuration: user 65534 (not root), EXPOSE 10169, the entrypoint with
#     --config.file=/etc/vsphere_backup_exporter/config.yml, the OCI labels (version and revision
#     those of the binary), and its size (at most IMAGE_MAX_BYTES, default 20 MB);
#   - its files: a static binary (ldd), Debian's CA bundle, the user nobody;
#   - the entrypoint run from the image's root against the vCenter simulator: `--version`, then
#     serving `vsphere_up 1`, `/-/ready` and `/-/healthy` as user 65534 with no capabilities, on a
#     read-only root, with the configuration and password mounted where the image expects them
#     and the simulator's CA added to the image's bundle (so TLS to vCenter trusts the image's
#     /etc/ssl/certs/ca-certificates.crt: no `ca_file`); the password never in its log.
#
# `podman run` is tried first for `--version`. Inside this machine's own container it is refused
# (crun: setrlimit RLIMIT_NOFILE: Operation not permitted), so the entrypoint runs from the
# unpacked image root: chroot as 65534 in a mount namespace of its own (unshare), the mounts a
# container runtime would make (the configuration, /proc) and the root remounted read-only.
# Needs root (chroot, mounts), as podman does here.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-vsphere-backup-exporter}
IMAGE_MAX_BYTES=${IMAGE_MAX_BYTES:-20000000}
VCSIM=tests/vcsim/vcsim
OUT=target/image/test
ENTRYPOINT_EXPECTED='["/usr/bin/vsphere_backup_exporter", "--config.file=/etc/vsphere_backup_exporter/config.yml"]'

fail() {
    echo "test-image: FAIL: $*" >&2
    exit 1
}

for tool in python3 curl ldd unshare chroot mount; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done
[ "$(id -u)" -eq 0 ] || fail "needs root: the entrypoint runs in a chroot with the mounts a container runtime makes"
[ -x "$VCSIM" ] || fail "$VCSIM is missing (make $VCSIM)"

scripts/image.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
archive=target/image/${IMAGE}_${version}.tar
[ -f "$archive" ] || fail "scripts/image.sh wrote no $archive"

# --- The image's configuration and files, from the archive. ---
rm -rf "$OUT"
mkdir -p "$OUT/archive" "$OUT/root"
tar -xf "$archive" -C "$OUT/archive"
# One KEY=VALUE line per fact of the image's configuration; the layers unpacked in order.
python3 - "$OUT/archive" "$OUT/root" >"$OUT/image.env" <<'PY'
import json, shlex, sys, tarfile
from pathlib import Path

archive, root = Path(sys.argv[1]), sys.argv[2]
[manifest] = json.loads((archive / "manifest.json").read_text())
config = json.loads((archive / manifest["Config"]).read_text())["config"]
for layer in manifest["Layers"]:
    with tarfile.open(archive / layer) as t:
        names = t.getnames()
        whiteouts = [n for n in names if Path(n).name.startswith(".wh.")]
        if whiteouts:
            sys.exit(f"unexpected whiteouts in {layer}: {whiteouts}")
        t.extractall(root, filter="tar")
# The entrypoint's arguments, NUL-separated, for the shell to run as they are.
(archive / "entrypoint").write_bytes(b"".join(a.encode() + b"\0" for a in config.get("Entrypoint") or []))
labels = config.get("Labels") or {}
facts = {
    "user": config.get("User", ""),
    "entrypoint": json.dumps(config.get("Entrypoint")),
    "ports": " ".join(sorted(config.get("ExposedPorts") or {})),
    "env": "\n".join(config.get("Env") or []),
    "layers": str(len(manifest["Layers"])),
}
for key in ("version", "revision", "source", "licenses", "created", "title"):
    facts["label_" + key] = labels.get("org.opencontainers.image." + key, "")
for key, value in facts.items():
    print(f"{key}={shlex.quote(value)}")
PY
# shellcheck disable=SC1091
. "$OUT/image.env"
root=$OUT/root

[ "$user" = "65534:65534" ] || fail "the image's user is '$user', expected 65534:65534"
[ "$entrypoint" = "$ENTRYPOINT_EXPECTED" ] || fail "entrypoint $entrypoint, expected $ENTRYPOINT_EXPECTED"
[ "$ports" = "10169/tcp" ] || fail "exposed ports '$ports', expected 10169/tcp"
[ "$label_version" = "$version" ] || fail "label version '$label_version', expected $version"
for label in revision source licenses created title; do
    value=label_$label
    [ -n "${!value}" ] || fail "label org.opencontainers.image.$label is empty"
done
grep -qx 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' "$root/etc/passwd" ||
    fail "/etc/passwd does not name the user 65534"

binary=$root/usr/bin/vsphere_backup_exporter
[ -x "$binary" ] || fail "/usr/bin/vsphere_backup_exporter is missing from the image"
linkage=$(ldd "$binary" 2>&1 || true)
case "$linkage" in
*"statically linked"* | *"not a dynamic executable"*) ;;
*) fail "the binary is not static; ldd: $linkage" ;;
esac
certificates=$(grep -c 'BEGIN CERTIFICATE' "$root/etc/ssl/certs/ca-certificates.crt" || true)
[ "$certificates" -ge 100 ] || fail "the CA bundle holds $certificates certificates"

size=$(stat -c %s "$archive")
[ "$size" -le "$IMAGE_MAX_BYTES" ] || fail "the image is $size bytes, over $IMAGE_MAX_BYTES"
echo "test-image: configuration: user $user, entrypoint $entrypoint, expose $ports, $layers layers, version $label_version, revision ${label_revision:0:12}"
echo "test-image: files: binary $(ldd "$binary" 2>&1 | xargs), CA bundle of $certificates certificates, size $size bytes (limit $IMAGE_MAX_BYTES)"

# --- podman run, where this machine allows it. ---
if out=$(timeout 120 podman run --rm --pull=never "localhost/$IMAGE:$version" --version 2>&1); then
    grep -q "version $version " <<<"$out" || fail "podman run --version: $out"
    echo "test-image: podman run --version: $out"
else
    echo "test-image: podman run refused here ($(tail -n 1 <<<"$out")); running the entrypoint from the unpacked image instead"
fi

# --- The entrypoint, from the unpacked root. ---
# The image's environment, nothing of ours.
mapfile -t image_env <<<"$env"
mapfile -d '' -t command <"$OUT/archive/entrypoint"
as_image=(env -i "${image_env[@]}" chroot --userspec=65534:65534 --groups=65534 "$root")

out=$("${as_image[@]}" "${command[0]}" --version 2>&1) || fail "--version: $out"
grep -q "^vsphere_backup_exporter, version $version (revision: ${label_revision:0:12})\$" <<<"$out" ||
    fail "--version says '$out'; the labels say version $version, revision $label_revision"
echo "test-image: --version: $out"

sim=""
exporter=""
cleanup() {
    [ -n "$exporter" ] && kill "$exporter" 2>/dev/null && wait "$exporter" 2>/dev/null
    [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    true
}
trap cleanup EXIT

# A password no other text contains, to find it in the log if it were ever printed.
password="image-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
"$VCSIM" -scenario golden -listen 127.0.0.1:0 -password "$password" -facts "$OUT/facts.json" \
    -cert-out "$OUT/vcsim-ca.pem" -exit-on-stdin-eof=false >"$OUT/vcsim.out" 2>"$OUT/vcsim.log" </dev/null &
sim=$!
for _ in $(seq 1 600); do
    grep -q '^VCSIM_URL=' "$OUT/vcsim.out" 2>/dev/null && break
    kill -0 "$sim" 2>/dev/null || fail "the simulator did not start: $(cat "$OUT/vcsim.log")"
    sleep 0.1
done
url=$(sed -n 's/^VCSIM_URL=//p' "$OUT/vcsim.out")
[ -n "$url" ] || fail "the simulator printed no VCSIM_URL within 60 s"

# What is mounted: the configuration directory (a ConfigMap and a Secret on Kubernetes), and the
# image's CA bundle with the simulator's CA appended (as a site adds its private CA).
config_dir=$OUT/mount/config
mkdir -p "$config_dir"
cat >"$config_dir/config.yml" <<YAML
vcenters:
  - name: vcsim
    url: $url
    username: user
    password_file: /etc/vsphere_backup_exporter/vcenter.password
YAML
install -m 400 -o 65534 -g 65534 /dev/null "$config_dir/vcenter.password"
printf '%s\n' "$password" >"$config_dir/vcenter.password"
cat "$root/etc/ssl/certs/ca-certificates.crt" "$OUT/vcsim-ca.pem" >"$OUT/mount/ca-certificates.crt"
# Mount points, as the runtime makes them before the root turns read-only.
mkdir -p "$root/etc/vsphere_backup_exporter" "$root/proc"

# shellcheck disable=SC2016
unshare --mount --propagation private sh -c '
    set -e
    root=$1; config_dir=$2; bundle=$3; shift 3
    mount --bind "$root" "$root"
    mount --bind "$config_dir" "$root/etc/vsphere_backup_exporter"
    mount -o remount,bind,ro "$root/etc/vsphere_backup_exporter"
    mount --bind "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    mount -o remount,bind,ro "$root/etc/ssl/certs/ca-certificates.crt"
    mount -t proc proc "$root/proc"
    mount -o remount,bind,ro "$root"
    exec "$@"
' sh "$root" "$config_dir" "$OUT/mount/ca-certificates.crt" \
    "${as_image[@]}" "${command[@]}" --web.listen-address=127.0.0.1:0 2>"$OUT/exporter.log" &
exporter=$!

port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*msg=Listening address=[^ ]*:\([0-9]*\)\( .*\)\{0,1\}$/\1/p' "$OUT/exporter.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$exporter" 2>/dev/null || fail "the exporter exited: $(cat "$OUT/exporter.log")"
    sleep 0.1
done
[ -n "$port" ] || fail "the exporter did not listen within 10 s: $(cat "$OUT/exporter.log")"
base=http://127.0.0.1:$port

# Who it runs as: 65534, no capabilities.
status=/proc/$exporter/status
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$status")
[ "$uids" = "65534 65534 65534 65534" ] || fail "the exporter runs with uids $uids"
caps=$(awk '/^CapEff:/ {print $2}' "$status")
[ "$caps" = "0000000000000000" ] || fail "the exporter has capabilities $caps"
exe=$(readlink "/proc/$exporter/exe")
[ "$exe" = "$(cd "$root" && pwd -P)/usr/bin/vsphere_backup_exporter" ] || fail "pid $exporter is $exe, not the image's binary"

# vsphere_up 1 within a minute (the golden inventory syncs in about a second).
deadline=$((SECONDS + 60))
up=""
while [ $SECONDS -lt $deadline ]; do
    up=$(curl -sf "$base/metrics" | grep '^vsphere_up{' || true)
    [ "$up" = 'vsphere_up{vcenter="vcsim"} 1' ] && break
    kill -0 "$exporter" 2>/dev/null || fail "the exporter exited: $(cat "$OUT/exporter.log")"
    sleep 0.5
done
[ "$up" = 'vsphere_up{vcenter="vcsim"} 1' ] ||
    fail "no vsphere_up 1 within 60 s (last: '${up:-none}'); log: $(cat "$OUT/exporter.log")"
for path in /-/ready /-/healthy; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
    [ "$code" = 200 ] || fail "$path answered $code"
done
rss=$(awk '/^VmHWM:/ {print $2}' "$status")
if grep -qF "$password" "$OUT/exporter.log"; then
    fail "the exporter's log holds the vCenter password"
fi
if grep -qiE 'level=(error|warn)' "$OUT/exporter.log"; then
    fail "the exporter logged warnings or errors: $(grep -iE 'level=(error|warn)' "$OUT/exporter.log")"
fi
echo "test-image: serving on a read-only root as uid 65534 (no capabilities): $up; /-/ready and /-/healthy 200; peak RSS $(awk -v k="$rss" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') (VmHWM $rss kB)"
echo "test-image: OK: localhost/$IMAGE:$version, $size bytes"
