#!/usr/bin/env bash
# Counts the messages of a Maildir tree or an mbox and checks their X-Mbxgen-Id
# headers against an mbxgen manifest, so every benchmarked tool is judged on
# what it produced, not only on its time.
#
#   count_ids.sh maildir|mbox PATH MANIFEST.tsv
#   count_ids.sh maildir|mbox PATH -      (lists each message's id, "-" if none)
#
# Prints one line: messages distinct_ids missing_ids extra_copies no_id unknown_ids
#   missing_ids  manifest ids absent from the output (messages lost)
#   extra_copies messages beyond the first with the same id (duplicates kept)
#   unknown_ids  ids in the output that the manifest does not list
set -euo pipefail

kind=$1 path=$2 manifest=$3

# Emits one line per message: its X-Mbxgen-Id (without <>, blanks, CR) or "-".
# The header block is read; only a message without the field there is read on
# (mbxgen's "no headers" messages carry the id as a body line). The field name
# is matched case-insensitively.
scan_headers='
  function emit() { if (open) print (id == "" ? "-" : id); open = 0 }
  function field(line) {
    sub(/^[^:]*:[ \t]*/, "", line); gsub(/[<> \t\r]/, "", line); return line
  }
'

case $kind in
  maildir)
    # Every file in any cur/ or new/ below PATH is one message (Maildir++ and
    # nested layouts alike); Dovecot index files live outside cur/ and new/.
    find "$path" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 |
      xargs -0 -r awk "$scan_headers"'
        FNR == 1 { emit(); open = 1; id = "" }
        tolower(substr($0, 1, 12)) == "x-mbxgen-id:" { id = field($0); emit(); nextfile }
        END { emit() }'
    ;;
  mbox)
    # A From_ line starts a message at the start of the file or after an empty line.
    awk "$scan_headers"'
      BEGIN { blank = 1 }
      /^From / && blank { emit(); open = 1; id = ""; blank = 0; next }
      { blank = ($0 ~ /^\r?$/) }
      id == "" && tolower(substr($0, 1, 12)) == "x-mbxgen-id:" { id = field($0) }
      END { emit() }' "$path"
    ;;
  *)
    echo "count_ids.sh: unknown kind '$kind' (maildir|mbox)" >&2
    exit 2
    ;;
esac | if [[ $manifest == - ]]; then cat; else awk -v manifest="$manifest" '
  BEGIN {
    # The manifest: one distinct id per line, in the first tab-separated column;
    # comment lines and a header line ("id...") are skipped.
    while ((getline line < manifest) > 0) {
      if (line ~ /^#/ || line ~ /^[ \t\r]*$/) continue
      split(line, col, "\t"); id = col[1]; gsub(/[<> \r]/, "", id)
      if (tolower(id) == "id" || tolower(id) == "x-mbxgen-id") continue
      want[id] = 1
    }
  }
  { n++; if ($1 == "-") { noid++; next } if (!($1 in seen)) distinct++; seen[$1]++ }
  END {
    for (k in want) if (!(k in seen)) missing++
    for (k in seen) if (!(k in want)) unknown++
    printf "%d %d %d %d %d %d\n", n, distinct, missing, n - distinct - noid, noid, unknown
  }'
fi
