#!/usr/bin/env bash
# `make image`: the container image, built offline `FROM scratch` (packaging/Containerfile) with
# podman, or buildah where podman is missing (both from Debian; `make deps-image` installs
# podman): the static x86_64-unknown-linux-musl release binary (stripped), Debian's CA bundle
# and the user nobody (65534). It tags IMAGE (default vsphere-backup-exporter) with the version and
# `latest` in the local store, writes target/image/vsphere-backup-exporter_VERSION.tar (a
# docker-archive: `docker load -i` and `podman load -i` both take it) and prints the size.
#
# Nothing is pulled: `FROM scratch` needs no base image and the Containerfile runs nothing.
# The release build for musl goes to target/x86_64-unknown-linux-musl/ (~6 minutes cold on
# 2 cores). NO_BUILD=1 reuses the binary already there (make test-image after make image).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-vsphere-backup-exporter}
TARGET=x86_64-unknown-linux-musl
OUT=target/image
CONTEXT=$OUT/context
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

fail() {
    echo "image: FAIL: $*" >&2
    exit 1
}

if command -v podman >/dev/null; then
    builder=(podman build)
    save() { podman image save --quiet --format docker-archive -o "$1" "$2"; }
    image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
    remove() { podman image rm "$1" >/dev/null 2>&1 || true; }
elif command -v buildah >/dev/null; then
    builder=(buildah build)
    save() { buildah push --quiet "$2" "docker-archive:$1:$2"; }
    image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }
    remove() { buildah rmi "$1" >/dev/null 2>&1 || true; }
else
    fail "neither podman nor buildah is installed (make deps-image installs podman)"
fi
command -v cargo >/dev/null || fail "cargo is missing: install Rust (rustup) first"
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
    fail "the Rust target $TARGET is missing (make deps-image adds it: rustup target add $TARGET)"
# aws-lc-sys compiles C for the target: cc takes musl-gcc (Debian's musl-tools) for it.
command -v musl-gcc >/dev/null || fail "musl-gcc is missing (make deps-image installs it: apt-get install musl-tools)"
[ -s "$CA_BUNDLE" ] || fail "$CA_BUNDLE is missing (apt-get install ca-certificates)"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
binary=target/$TARGET/release/vsphere_backup_exporter
if [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$binary" ]; then
    echo "image: cargo build --release --target $TARGET" >&2
    cargo build --release --locked --quiet --target "$TARGET" --bin vsphere_backup_exporter ||
        fail "the musl release build failed"
fi

# The revision label is the commit the binary says it was built from (build.rs stamps it), so
# the two agree even when HEAD moved since the build.
short=$("$binary" --version | sed -n 's/.*(revision: \(.*\))$/\1/p')
revision=$(git rev-parse --verify --quiet "${short:-unknown}^{commit}" 2>/dev/null || echo "${short:-unknown}")
# The commit's time, so that the same commit gives the same labels and layers (--timestamp).
epoch=$(git log -1 --format=%ct "$revision" 2>/dev/null || date +%s)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
cp packaging/Containerfile "$CONTEXT/Containerfile"
cp "$binary" "$CONTEXT/vsphere_backup_exporter"
strip -s "$CONTEXT/vsphere_backup_exporter"
cp "$CA_BUNDLE" "$CONTEXT/ca-certificates.crt"
echo 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$CONTEXT/passwd"
echo 'nogroup:x:65534:' >"$CONTEXT/group"

# The image this replaces: removed once untagged, so that rebuilds leave no images behind.
previous=$(image_id "localhost/$IMAGE:$version")
"${builder[@]}" --quiet --pull=never --layers=false --timestamp "$epoch" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    -t "$IMAGE:$version" -t "$IMAGE:latest" -f "$CONTEXT/Containerfile" "$CONTEXT" >"$OUT/image-id" ||
    fail "$(basename "${builder[0]}") build"

current=$(image_id "localhost/$IMAGE:$version")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    remove "$previous"
fi

archive=$OUT/${IMAGE}_${version}.tar
rm -f "$archive"
save "$archive" "localhost/$IMAGE:$version" || fail "saving $archive"

# The size is the archive's: the image's layers uncompressed, as `docker load` takes them; a
# registry would send them gzipped.
size=$(stat -c %s "$archive")
gzipped=$(gzip -c "$archive" | wc -c)
echo "$size" >"$OUT/size"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
echo "image: OK: localhost/$IMAGE:$version, $(mb "$size") ($size bytes; $(mb "$gzipped") gzipped); $archive"
