#!/usr/bin/env bash
# Generates docs/reference/ from the collection's own DOCUMENTATION and
# meta/argument_specs.yml (antsibull-docs reads what ansible-doc reads), so
# `ansible-doc phyllome.os.<module>` and docs/ cannot disagree.
#
#   tools/docs.sh           regenerate docs/reference/
#   tools/docs.sh --check   fail if docs/reference/ is not what would be generated
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/docs/reference"
work=$(mktemp -d)
mkdir -m 0755 "$work/out"
trap 'rm -rf "$work"' EXIT

# Lint first: broken markup or a schema error fails here with the plugin's name.
antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck "$here"

antsibull-docs collection --use-current --squash-hierarchy --fail-on-error \
  --output-format simplified-rst --no-add-antsibull-docs-version \
  --dest-dir "$work/out" phyllome.os

# antsibull-docs leaves out, without an error, a plugin or role whose
# documentation it cannot read (a YAML error in argument_specs.yml dropped
# host_role.rst once): every one must have its page.
missing=()
for f in "$here"/plugins/modules/*.py; do
  n=$(basename "$f" .py); [ -e "$work/out/${n}_module.rst" ] || missing+=("module $n")
done
for f in "$here"/plugins/filter/*.yml; do
  n=$(basename "$f" .yml); [ -e "$work/out/${n}_filter.rst" ] || missing+=("filter $n")
done
for f in "$here"/plugins/inventory/*.py; do
  n=$(basename "$f" .py); [ -e "$work/out/${n}_inventory.rst" ] || missing+=("inventory plugin $n")
done
for f in "$here"/roles/*/meta/argument_specs.yml; do
  n=$(basename "$(dirname "$(dirname "$f")")"); [ -e "$work/out/${n}_role.rst" ] || missing+=("role $n")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'no page generated for %s: its documentation could not be read\n' "${missing[@]}" >&2
  exit 1
fi

if [ "${1:-}" = "--check" ]; then
  if ! diff -ru "$dest" "$work/out"; then
    echo "docs/reference/ is out of date: run 'make docs' and commit the result" >&2
    exit 1
  fi
  echo "docs/reference/ matches the collection's documentation"
  exit 0
fi

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -r "$work/out" "$dest"
echo "docs/reference/ regenerated"
