#!/usr/bin/env bash
# Replaces the vendored RustSec advisories (supply-chain/advisory-db/crates) with those of a newer
# copy of the database, and records its commit and date in supply-chain/advisory-db/SNAPSHOT.md.
#
#   bash supply-chain/refresh-advisory-db.sh DIR
#
# DIR: a checkout of the RustSec advisory-db repository (git clone where it can be reached), or an
# offline snapshot with a SNAPSHOT.md naming its commit and date. Nothing is fetched here.
set -euo pipefail
src="${1:?usage: refresh-advisory-db.sh DIR (a copy of the RustSec advisory-db)}"
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/advisory-db"
[ -d "$src/crates" ] || { echo "$src has no crates/ folder: not an advisory database" >&2; exit 1; }

if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
  commit="$(git -C "$src" rev-parse HEAD)"
  date="$(git -C "$src" show -s --format=%cs HEAD)"
else
  commit="$(grep -oE '\b[0-9a-f]{40}\b' "$src/SNAPSHOT.md" | head -1)"
  date="$(grep -oE '\b20[0-9]{2}-[0-9]{2}-[0-9]{2}\b' "$src/SNAPSHOT.md" | head -1)"
fi
[ -n "$commit" ] && [ -n "$date" ] || { echo "cannot tell the commit and date of $src" >&2; exit 1; }

rm -rf "$dest/crates"
cp -r "$src/crates" "$dest/crates"
cp "$src/LICENSE.txt" "$dest/LICENSE.txt"
chmod -R u+w "$dest"
sed -i -E "s/^Snapshot-Commit: .*/Snapshot-Commit: $commit/; s/^Snapshot-Date: .*/Snapshot-Date: $date/" "$dest/SNAPSHOT.md"
echo "advisories of $date ($commit): $(find "$dest/crates" -name '*.md' | wc -l) files in $dest/crates"
