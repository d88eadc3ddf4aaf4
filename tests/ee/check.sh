#!/usr/bin/env bash
# Checks execution-environment.yml with `ansible-builder create` (offline: it
# writes the build context, it builds no image) and that the context carries
# what phyllome.os needs: the collection tarball, the distribution packages
# (python3-libvirt, python3-lxml) and the Python packages, and installs them.
#
#   tests/ee/check.sh DIST_DIR      (DIST_DIR holds `make build`'s phyllome-os-*.tar.gz)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dist=$(cd "${1:?usage: $0 DIST_DIR}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The files execution-environment.yml names, laid out as in the tree, with
# the tarball where `make build` puts it by default (.build/dist).
mkdir -p "$work/meta" "$work/.build/dist"
cp "$root/execution-environment.yml" "$root/bindep.txt" "$work/"
cp "$root/meta/ee-requirements.txt" "$work/meta/"
cp "$dist"/phyllome-os-*.tar.gz "$work/.build/dist/"

ansible-builder create -f "$work/execution-environment.yml" --context "$work/context" >"$work/create.log" 2>&1 \
  || { cat "$work/create.log"; exit 1; }

fail() { echo "ee-check: $*" >&2; exit 1; }
ctx=$work/context
for pkg in python3-libvirt python3-lxml; do
  grep -q "^$pkg " "$ctx/_build/bindep.txt" || fail "$pkg missing from the context's bindep.txt"
done
grep -q '^jmespath' "$ctx/_build/requirements.txt" || fail "jmespath missing from the context's requirements.txt"
ls "$ctx"/_build/collections/phyllome-os-*.tar.gz >/dev/null 2>&1 || fail "the collection tarball is not in the context"
grep -q 'ansible-galaxy collection install --offline --no-deps .*phyllome-os-\*\.tar\.gz' "$ctx/Dockerfile" \
  || fail "the Containerfile does not install the collection"
grep -q 'community.general' "$ctx/_build/requirements.yml" || fail "the collection's dependencies are not in requirements.yml"
# The tarball's own metadata points ansible-builder's introspection at the same files.
tar -xzOf "$ctx"/_build/collections/phyllome-os-*.tar.gz meta/execution-environment.yml | grep -q 'system: bindep.txt' \
  || fail "the tarball lacks meta/execution-environment.yml"
echo "ee-check: ansible-builder create made a context with phyllome.os and its requirements"
