#!/usr/bin/env bash
# `make demo`: the main job on the bundled samples, in a scratch copy under build/demo.
#  1. merge a blank mailbox's mail into the original one (Maildir, four folders);
#  2. merge two mbox files into a new Maildir;
#  3. the KB 278447 recovery of a whole store (mbox, Maildir and PST mailboxes):
#     diagnose, recover, diagnose again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build/release}
mbx="$here/../$build/cli/mbxmerge"
[ -x "$mbx" ] || { echo "demo: $mbx not built (run make build)"; exit 1; }
work="$here/../build/demo"
rm -rf "$work" && mkdir -p "$work"
cp -a "$here/data/maildir" "$here/data/mbox" "$here/data/store" "$work/"
cd "$work"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "What is in the original mailbox and in the blank one" "$mbx" list maildir/a
"$mbx" list maildir/b
step "Plan the merge: count, write nothing" "$mbx" merge --from maildir/b --into maildir/a --dry-run
step "Merge the blank mailbox into the original" "$mbx" merge --from maildir/b --into maildir/a --report merge.json
step "Run it again: everything is already there" "$mbx" merge --from maildir/b --into maildir/a
step "Two mbox files into a new Maildir, only 2021 mail" \
  "$mbx" merge --from mbox/a.mbox --from mbox/b.mbox --into maildir:merged --since 2021-01-01 --until 2021-12-31
# ExMerge-era stores hold Outlook PST files too: make three mailboxes PSTs
# (with our own PST writer), so the recovery below mixes PST, mbox and Maildir.
printf '\n\033[1m== %s\033[0m\n' "Three of the store's mailboxes as Outlook PST files"
for f in $(ls store/store/mailboxes/*.mbox | head -n 3); do
  "$mbx" merge --from "$f" --into "${f%.mbox}.pst" --quiet && rm "$f"
  echo "$(basename "${f%.mbox}.pst")"
done
step "The store after the failed upgrade" "$mbx" diagnose --store store/store
step "Recover every blank-connected user" "$mbx" recover --store store/store --report recover.json
step "The directory changes to apply" head -n 12 store/store/reconnect.ldif
step "The store now" "$mbx" diagnose --store store/store
printf '\nDemo files are in %s (reports: merge.json, recover.json).\n' "$work"
