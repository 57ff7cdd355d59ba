#!/usr/bin/env bash
# Container images of livegames serve, with podman (or docker: set ENGINE=docker).
#
#   deploy/image.sh base                  # debian:bookworm-slim: pulled, or made from
#                                         # Debian's packages when no registry answers
#   deploy/image.sh runtime BINARY [TAG]  # deploy/Dockerfile's runtime stage around a
#                                         # binary built outside (CI's), tag livegames:test
#   deploy/image.sh full [TAG]            # the whole multi-stage build of deploy/Dockerfile,
#                                         # tag livegames:0.1.0; rust:1.88-bookworm pulled, or
#                                         # a stand-in: Debian's build tools and this
#                                         # machine's Rust toolchain (newer than 1.88)
#   deploy/image.sh stand-ins             # influxdb, prom/prometheus, prom/alertmanager as
#                                         # compose names them: pulled, or made from Debian's
#                                         # packages (deploy/podman/stand-ins/)
#
# Images are built in Docker's format: podman's default (OCI) drops HEALTHCHECK.
# podman reads deploy/podman/containers.conf unless CONTAINERS_CONF names another.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
engine="${ENGINE:-podman}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"

have_image() { "$engine" image exists "$1" 2>/dev/null || "$engine" image inspect "$1" >/dev/null 2>&1; }

base() {
  local name=docker.io/library/debian:bookworm-slim
  if have_image "$name"; then echo "$name: present"; return; fi
  if timeout 60 "$engine" pull -q "$name" >/dev/null 2>&1; then echo "$name: pulled"; return; fi
  echo "$name: no registry answered; making it from Debian's packages (mmdebstrap)"
  local tar
  tar="$(mktemp --suffix=.tar)"
  mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
    bookworm "$tar"
  "$engine" import --quiet "$tar" "$name" >/dev/null
  rm -f "$tar"
  echo "$name: made"
}

# The Dockerfile's runtime stage (from its second FROM on), the binary copied in
# instead of taken from the build stage: the same instructions, user, healthcheck.
runtime() {
  local binary="$1" tag="${2:-livegames:test}" context
  [ -x "$binary" ] || { echo "deploy/image.sh runtime: $binary is not an executable" >&2; exit 2; }
  context="$(mktemp -d)"
  cp "$binary" "$context/livegames"
  awk 'f || /^FROM debian:/ { f = 1; print }' "$here/Dockerfile" \
    | sed 's#^COPY --from=build /src/target/release/livegames #COPY livegames #' \
    > "$context/Containerfile"
  grep -q '^COPY livegames ' "$context/Containerfile" \
    || { echo "deploy/image.sh: the runtime stage's COPY of the binary changed; update this script" >&2; exit 1; }
  "$engine" build --quiet --format docker -f "$context/Containerfile" -t "$tag" "$context" >/dev/null
  rm -rf "$context"
  echo "$tag: built around $binary"
}

# compose's images: the registry's, or stand-ins from Debian's packages.
stand_ins() {
  local name file
  for pair in \
    "docker.io/library/influxdb:1.8 influxdb" \
    "docker.io/prom/prometheus:v2.42.0 prometheus" \
    "docker.io/prom/alertmanager:v0.25.0 alertmanager"; do
    name="${pair% *}" file="${pair#* }"
    if have_image "$name"; then echo "$name: present"; continue; fi
    if timeout 60 "$engine" pull -q "$name" >/dev/null 2>&1; then echo "$name: pulled"; continue; fi
    "$engine" build --quiet --format docker -f "$here/podman/stand-ins/$file.Containerfile" \
      -t "$name" "$here/podman/stand-ins" >/dev/null
    echo "$name: a stand-in from Debian's packages"
  done
}

# rust:1.88-bookworm where no registry serves it: Debian's build tools, this machine's
# stable toolchain where the official image has its own (RUSTUP_HOME, CARGO_HOME and
# PATH as it sets them), and the CA certificates this machine trusts beyond Debian's
# (a proxy in the way of crates.io), for a local build only.
rust_stand_in() {
  local name=docker.io/library/rust:1.88-bookworm context toolchain
  if have_image "$name"; then echo "$name: present"; return; fi
  if timeout 60 "$engine" pull -q "$name" >/dev/null 2>&1; then echo "$name: pulled"; return; fi
  toolchain="$(rustc --print sysroot)"
  context="$(mktemp -d)"
  mmdebstrap --quiet --variant=minbase \
    --include=gcc,g++,libc6-dev,pkg-config,make,cmake,binutils,ca-certificates \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' bookworm "$context/base.tar"
  "$engine" import --quiet "$context/base.tar" localhost/livegames-rust-base:bookworm >/dev/null
  rm -f "$context/base.tar"
  mkdir -p "$context/toolchain" "$context/ca"
  cp -a "$toolchain/bin" "$toolchain/lib" "$context/toolchain/"
  [ -d "$toolchain/libexec" ] && cp -a "$toolchain/libexec" "$context/toolchain/"
  cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
  cat > "$context/Containerfile" <<'FILE'
FROM localhost/livegames-rust-base:bookworm
COPY toolchain /usr/local/rustup/toolchains/stable
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rustup/toolchains/stable/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
FILE
  "$engine" build --quiet --format docker -t "$name" "$context" >/dev/null
  rm -rf "$context"
  echo "$name: a stand-in ($(rustc --version), Debian's build tools)"
}

full() {
  local tag="${1:-livegames:0.1.0}"
  rust_stand_in
  base
  "$engine" build --format docker -f "$here/Dockerfile" -t "$tag" "$root"
}

case "${1:-}" in
  base) base ;;
  runtime) shift; runtime "$@" ;;
  full) shift; full "$@" ;;
  stand-ins) stand_ins ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
