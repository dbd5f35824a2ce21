#!/usr/bin/env bash
# MIME merges: mbxmerge against the usual Unix tools, side by side in one
# run, on inputs generated deterministically by mbxgen. Writes the head of
# benchmarks/RESULTS.md (machine, method) and its sections (a), (b), (a2),
# the raw timings and the micro-benchmarks; keeps the other scripts' sections.
# benchmarks/run.sh runs it with all the others.
#
#   benchmarks/mime_bench.sh
#
# Environment:
#   ROUNDS=3      measured rounds per tool (plus one warm-up round, not counted)
#   SCALE=1       1 = ~12,000 messages / ~500 MiB per comparison; 0.05 for a quick run
#   SEED=42       mbxgen seed
#   FORMAIL_SAMPLE=600  messages fed to formail's per-message delivery (it forks
#                 twice per message: the full input would take many minutes)
#   MICRO=1       also run the micro-benchmarks (mbx_bench) and add them to RESULTS.md
#   BUILD_DIR=build/bench-release   OUT=benchmarks/RESULTS.md
#   NO_BUILD=1 MBXMERGE=... MBXGEN=...   use prebuilt binaries (testing the harness)
#
# Comparisons:
#   (a) two mboxes -> new Maildir: mbxmerge vs formail -D (procmail) vs mdeliver (mblaze)
#       (formail twice: -D into one mbox, its best case; and -D -s with a
#       per-message Maildir delivery, the procmail way, on a sample)
#   (b) Maildir B merged into a copy of Maildir A: mbxmerge vs doveadm import + deduplicate -m
#   (a2) mbxmerge --jobs 1 vs --jobs 2 on (a)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
SEED=${SEED:-42}
MICRO=${MICRO:-1}
FORMAIL_SAMPLE=${FORMAIL_SAMPLE:-600}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=$ROOT/benchmarks/work
COUNT=$ROOT/benchmarks/count_ids.sh
DOVE_USER=mbxbench

# 500 MiB over 12,000 messages: ~43 KiB per message on average.
TOTAL_MESSAGES=$(awk -v s="$SCALE" 'BEGIN { n = int(12000 * s + 0.5); print (n < 20 ? 20 : n) }')
AVG_SIZE=43690
DUP_RATE=0.15

BENCH=mime-bench
# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"
trap empty_trash EXIT

# ---------------------------------------------------------------- prerequisites
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (apt-get install $2)"
}
need cmake cmake
need ninja ninja-build
need formail procmail
need mdeliver mblaze
need doveadm dovecot-core
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: install the Debian package 'time'"

# ---------------------------------------------------------------- build (Release)
if [[ ${NO_BUILD:-0} != 1 ]]; then
  if [[ $MICRO == 1 ]]; then build_release ON mbxmerge mbxgen mbx_bench; else build_release OFF mbxmerge mbxgen; fi
fi
MBXMERGE=${MBXMERGE:-$BUILD_DIR/cli/mbxmerge}
MBXGEN=${MBXGEN:-$BUILD_DIR/samples/mbxgen}
[[ -x $MBXMERGE && -x $MBXGEN ]] || die "mbxmerge or mbxgen missing in $BUILD_DIR"

mkdir -p "$WORK"/{logs,cmds,a,b}
RAW=$WORK/raw.tsv  # label round seconds peak_rss_kb status user_s sys_s
: >"$RAW"

# ---------------------------------------------------------------- inputs
# Regenerated only when the generator, its arguments or the seed change.
generate() {  # dir format
  local dir=$1 fmt=$2 ext=""
  [[ $fmt == mbox ]] && ext=.mbox
  local args=(pair --format "$fmt" --out-a "$dir/a$ext" --out-b "$dir/b$ext"
    --messages "$TOTAL_MESSAGES" --dup-rate "$DUP_RATE" --seed "$SEED"
    --avg-size "$AVG_SIZE" --manifest "$dir/manifest.tsv")
  local stamp
  stamp="$(sha256sum "$MBXGEN" | cut -c1-16) ${args[*]}"
  if [[ -f $dir/stamp && $(cat "$dir/stamp") == "$stamp" ]]; then
    log "inputs in $dir are up to date"
    return
  fi
  log "generating $fmt inputs: $TOTAL_MESSAGES messages, ~$AVG_SIZE bytes each"
  rm -rf "$dir/a$ext" "$dir/b$ext" "$dir/manifest.tsv" "$dir/stamp"
  "$MBXGEN" "${args[@]}" >"$WORK/logs/mbxgen-$fmt.log" 2>&1 ||
    { cat "$WORK/logs/mbxgen-$fmt.log" >&2; die "mbxgen failed"; }
  echo "$stamp" >"$dir/stamp"
}
generate "$WORK/a" mbox
generate "$WORK/b" maildir

A_MBOX=$WORK/a/a.mbox B_MBOX=$WORK/a/b.mbox MAN_A=$WORK/a/manifest.tsv
A_DIR=$WORK/b/a B_DIR=$WORK/b/b MAN_B=$WORK/b/manifest.tsv

maildir_bytes() { find "$@" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
maildir_count() { find "$@" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l; }
manifest_ids() { awk -F'\t' '!/^#/ && NF && tolower($1) != "id"' "$1" | wc -l; }
BYTES_A=$(($(stat -c %s "$A_MBOX") + $(stat -c %s "$B_MBOX")))
MSGS_A=$(($("$COUNT" mbox "$A_MBOX" "$MAN_A" | cut -d' ' -f1) + $("$COUNT" mbox "$B_MBOX" "$MAN_A" | cut -d' ' -f1)))
IDS_A=$(manifest_ids "$MAN_A")
BYTES_B=$(maildir_bytes "$A_DIR" "$B_DIR")
MSGS_B=$(($(maildir_count "$A_DIR") + $(maildir_count "$B_DIR")))
MSGS_B_ONLY=$(maildir_count "$B_DIR")
IDS_B=$(manifest_ids "$MAN_B")
# The sample for formail's per-message delivery: the first half from each mbox
# (duplicates of early A messages included), and its own list of expected ids.
SAMPLE=$WORK/a/sample.mbox SAMPLE_MAN=$WORK/a/sample-manifest.tsv
take_messages() {  # mbox count
  awk -v max="$2" 'BEGIN { blank = 1 } /^From / && blank { if (++n > max) exit } { blank = ($0 ~ /^\r?$/); print }' "$1"
}
{ take_messages "$A_MBOX" $((FORMAIL_SAMPLE / 2)); take_messages "$B_MBOX" $((FORMAIL_SAMPLE - FORMAIL_SAMPLE / 2)); } >"$SAMPLE"
"$COUNT" mbox "$SAMPLE" - | grep -v '^-$' | sort -u >"$SAMPLE_MAN"
BYTES_S=$(stat -c %s "$SAMPLE")
MSGS_S=$("$COUNT" mbox "$SAMPLE" "$SAMPLE_MAN" | cut -d' ' -f1)
IDS_S=$(wc -l <"$SAMPLE_MAN")

log "(a) $MSGS_A messages, $BYTES_A bytes, $IDS_A distinct ids; (b) $MSGS_B messages, $BYTES_B bytes, $IDS_B distinct ids"

# ---------------------------------------------------------------- Dovecot setup
# doveadm refuses to run as root: as root it runs as a dedicated system user.
DOVE_CONF=$WORK/cmds/dovecot.conf
cat >"$DOVE_CONF" <<'EOF'
# Standalone config for doveadm run by a plain system user: no auth, no SSL.
mail_location = maildir:~/Maildir
ssl = no
log_path = /dev/stderr
EOF
chmod 644 "$DOVE_CONF"
AS_DOVE=()
if [[ $(id -u) == 0 ]]; then
  id "$DOVE_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$DOVE_USER"
  AS_DOVE=(runuser -u "$DOVE_USER" --)
fi

# ---------------------------------------------------------------- command scripts
# Each timed command is one script, so /usr/bin/time measures the whole
# pipeline (its %M is the peak RSS of the largest process in it).
MAILDIR_A=$WORK/a/out  # output of (a), recreated before each run
cat >"$WORK/cmds/formail-sh.sh" <<EOF
# formail -D drops repeated Message-IDs; -s hands every message to a tiny
# delivery command (the procmail way: one sh + cat per message). For a dropped
# duplicate formail still runs the command with empty input: remove the empty file.
formail -D 100000000 '$WORK/a/idcache' -s \\
  sh -c 'f="\$1/new/\$FILENO"; cat >"\$f"; [ -s "\$f" ] || rm -f "\$f"' sh '$MAILDIR_A' <'$SAMPLE'
EOF
cat >"$WORK/cmds/formail-mbox.sh" <<EOF
# formail's best case: dedupe into one mbox, no per-message delivery, no fsync.
cat '$A_MBOX' '$B_MBOX' | formail -D 100000000 '$WORK/a/idcache' -s >'$WORK/a/formail.mbox'
EOF
cat >"$WORK/cmds/mdeliver.sh" <<EOF
# Plain delivery, no dedupe.
cat '$A_MBOX' '$B_MBOX' | mdeliver -M '$MAILDIR_A'
EOF
DOVE_ROOT=$WORK/b/dovecot
DOVEADM=(env HOME="$DOVE_ROOT" USER="$DOVE_USER" doveadm -c "$DOVE_CONF" -o "mail_location=maildir:$DOVE_ROOT/a")
cat >"$WORK/cmds/dovecot.sh" <<EOF
set -e
# Import every folder of B under the root of A, then expunge the newer copy of
# each repeated Message-ID in every folder.
${AS_DOVE[*]} ${DOVEADM[*]} import maildir:$DOVE_ROOT/b "" all
${AS_DOVE[*]} ${DOVEADM[*]} deduplicate -m mailbox '*'
EOF

# ---------------------------------------------------------------- runner
# timed LABEL ROUND CMD...: runs CMD under /usr/bin/time; records the result.
timed() {
  local label=$1 round=$2
  shift 2
  local tf=$WORK/logs/time.txt status=ok
  sync  # no tool pays for the previous one's dirty pages (mbxmerge uses syncfs)
  if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$WORK/logs/$label.$round.out" 2>"$WORK/logs/$label.$round.err"; then
    status=failed
    log "$label round $round FAILED (see $WORK/logs/$label.$round.err):"
    tail -n 5 "$WORK/logs/$label.$round.err" >&2 || true
  fi
  local secs rss usr sys
  read -r secs rss usr sys < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$secs" "$rss" "$status" "$usr" "$sys" >>"$RAW"
  log "$label round $round: ${secs}s, peak RSS ${rss} KiB, $status"
}

# check LABEL ROUND KIND PATH MANIFEST: correctness of one output. Counting
# 12,000 files takes a while on a busy disk, so only the first and the last
# measured rounds are checked (CHECK_ALL=1: every round); a change between
# checked rounds is reported.
declare -A CHECK
check() {
  local label=$1 round=$2 result
  [[ ${CHECK_ALL:-0} == 1 || $round == 1 || $round == "$ROUNDS" ]] || return 0
  result=$("$COUNT" "$3" "$4" "$5" 2>/dev/null) || result="- - - - - -"
  if [[ -n ${CHECK[$label]:-} && ${CHECK[$label]} != "$result" ]]; then
    log "WARNING: $label output differs between rounds: '${CHECK[$label]}' vs '$result'"
    CHECK[$label.unstable]=1
  fi
  CHECK[$label]=$result
}

JOBS2_LABEL=mbxmerge-j2
[[ $(nproc) == 2 ]] && JOBS2_LABEL=mbxmerge

fresh_maildir() { discard "$1" && mkdir -p "$1"/{cur,new,tmp}; }

run_a() {  # round
  local r=$1
  # (a) and (c): two mboxes into a new Maildir. mbxmerge's default --jobs is
  # the number of hardware threads: on 2 CPUs that run is also (a2)'s --jobs 2.
  discard "$MAILDIR_A"
  timed mbxmerge "$r" "$MBXMERGE" merge --from "$A_MBOX" --from "$B_MBOX" --into "maildir:$MAILDIR_A" \
    --report "$WORK/logs/mbxmerge-a.$r.json" --quiet
  check mbxmerge "$r" maildir "$MAILDIR_A" "$MAN_A"
  # The warm-up round runs mbxmerge only: the inputs are in the page cache by
  # now, and the fork- and fsync-bound tools' runs take minutes each.
  ((r == 0)) && return
  for j in 1 2; do
    [[ $j == 2 && $JOBS2_LABEL == mbxmerge ]] && continue
    discard "$MAILDIR_A"
    timed "mbxmerge-j$j" "$r" "$MBXMERGE" merge --from "$A_MBOX" --from "$B_MBOX" --into "maildir:$MAILDIR_A" \
      --jobs "$j" --report "$WORK/logs/mbxmerge-a-j$j.$r.json" --quiet
    check "mbxmerge-j$j" "$r" maildir "$MAILDIR_A" "$MAN_A"
  done
  discard "$MAILDIR_A" "$WORK/a/idcache" "$WORK/a/formail.mbox"
  timed formail-mbox "$r" bash "$WORK/cmds/formail-mbox.sh"
  check formail-mbox "$r" mbox "$WORK/a/formail.mbox" "$MAN_A"
  discard "$WORK/a/formail.mbox" "$WORK/a/idcache"
  fresh_maildir "$MAILDIR_A"
  timed formail-sh "$r" bash "$WORK/cmds/formail-sh.sh"
  check formail-sh "$r" maildir "$MAILDIR_A" "$SAMPLE_MAN"
  fresh_maildir "$MAILDIR_A"
  timed mdeliver "$r" bash "$WORK/cmds/mdeliver.sh"
  check mdeliver "$r" maildir "$MAILDIR_A" "$MAN_A"
}

run_b() {  # round
  local r=$1 target=$WORK/b/target
  # (b) Maildir B into a fresh copy of Maildir A (copies are not timed). The
  # copies are hard links (cp -al): neither tool rewrites an existing message
  # file (they add files, rename, unlink), and a 250 MB deep copy per run costs
  # more than the runs themselves on a busy disk.
  discard "$target"
  cp -al "$A_DIR" "$target"
  timed mbxmerge-b "$r" "$MBXMERGE" merge --from "maildir:$B_DIR" --into "maildir:$target" \
    --report "$WORK/logs/mbxmerge-b.$r.json" --quiet
  check mbxmerge-b "$r" maildir "$target" "$MAN_B"
  discard "$target"

  discard "$DOVE_ROOT"
  mkdir -p "$DOVE_ROOT"
  # doveadm writes index files into the source too: it gets its own copy of B.
  cp -al "$A_DIR" "$DOVE_ROOT/a" && cp -al "$B_DIR" "$DOVE_ROOT/b"
  # Dovecot's user must own the files too, or fs.protected_hardlinks stops it
  # from hard-linking them (the originals share the inodes; root reads them all).
  [[ ${#AS_DOVE[@]} -gt 0 ]] && chown -R "$DOVE_USER:" "$DOVE_ROOT"
  timed dovecot "$r" bash "$WORK/cmds/dovecot.sh"
  check dovecot "$r" maildir "$DOVE_ROOT/a" "$MAN_B"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
for ((r = 0; r <= ROUNDS; r++)); do
  if ((r == 0)); then
    log "warm-up round (not counted)"
    cat "$A_MBOX" "$B_MBOX" "$SAMPLE" >/dev/null
    find "$A_DIR" "$B_DIR" -type f -exec cat {} + >/dev/null
  else log "round $r of $ROUNDS"; fi
  run_a "$r"
  run_b "$r"
done
elapsed=$(($(date +%s) - started))
discard "$MAILDIR_A" "$DOVE_ROOT"

# ---------------------------------------------------------------- report
median() {  # label column(3=secs,4=rss): median over measured rounds, "" if none
  awk -F'\t' -v l="$1" -v c="$2" '$1 == l && $2 > 0 && $5 == "ok" { print $c }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) exit; print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
failures() { awk -F'\t' -v l="$1" '$1 == l && $5 != "ok"' "$RAW" | wc -l; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "") print "n/a"; else printf f, x }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else print a / b }'; }
rate() { div "$2" "$(median "$1" 3)"; }  # label messages: messages per second

# row LABEL TOOL_TEXT BYTES MESSAGES REFERENCE_RATE EXPECTED_IDS
# The ratio column is the reference's messages/s over this tool's (for the same
# input, simply this tool's time over the reference's).
row() {
  local label=$1 text=$2 bytes=$3 msgs=$4 ref=$5 want=$6
  local s rss c n d miss extra noid note
  s=$(median "$label" 3)
  rss=$(median "$label" 4)
  read -r n d miss extra noid _ <<<"${CHECK[$label]:-"- - - - -"}"
  if [[ $n == - ]]; then
    c="no output"
  elif ((miss == 0 && extra == 0 && noid == 0 && d == want)); then
    c="**exact**"
  else
    c="lost $miss, kept $extra extra copies"
    ((noid > 0)) && c+=", $noid without id"
  fi
  note=""
  (($(failures "$label") > 0)) && note=" ($(failures "$label") failed runs)"
  [[ -n ${CHECK[$label.unstable]:-} ]] && note+=" (output differs between rounds)"
  printf '| %s%s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n' "$text" "$note" \
    "$(fmt "$s" %.2f)" "$(fmt "$(div "$(div "$bytes" 1048576)" "$s")" %.1f)" \
    "$(fmt "$(div "$msgs" "$s")" %.0f)" "$(fmt "$(div "$rss" 1024)" %.1f)" \
    "$(fmt "$(div "$ref" "$(div "$msgs" "$s")")" %.2fx)" "$n" "$d" "$miss" "$extra" "$c"
}
header() {  # reference name
  echo "| tool | median s | MB/s | messages/s | peak RSS MiB | $1 speed-up over it | messages out | distinct ids | lost / extra copies | correctness |"
  echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|'
}
verdict() {  # text true|false
  if [[ $2 == true ]]; then echo "**met** ($1)"; else echo "**NOT met** ($1)"; fi
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "" && b != "" && a + 0 >= b + 0) ? "true" : "false" }'; }

r_m=$(rate mbxmerge "$MSGS_A") r_fsh=$(rate formail-sh "$MSGS_S") r_fmb=$(rate formail-mbox "$MSGS_A")
r_md=$(rate mdeliver "$MSGS_A") r_mb=$(rate mbxmerge-b "$MSGS_B") r_dv=$(rate dovecot "$MSGS_B")
r_j1=$(rate mbxmerge-j1 "$MSGS_A") r_j2=$(rate "$JOBS2_LABEL" "$MSGS_A")
x_fsh=$(div "$r_m" "$r_fsh") x_fmb=$(div "$r_m" "$r_fmb") x_md=$(div "$r_m" "$r_md") x_dv=$(div "$r_mb" "$r_dv")
v_a1=$(verdict "$(fmt "$x_fsh" %.1f)x formail's per-message Maildir delivery" "$(ge "$x_fsh" 10)")

v_a2=$(verdict "$(fmt "$x_md" %.2f)x mdeliver's throughput" "$(awk -v x="$x_md" 'BEGIN { print (x != "" && x > 1) ? "true" : "false" }')")
v_b=$(verdict "mbxmerge takes $(fmt "$(div "$r_dv" "$r_mb")" %.2f)x Dovecot's time" "$(ge "$x_dv" "$(div 1 1.5)")")
mbx_report() {  # report.json: mbxmerge's own totals, for a cross-check with the count
  if command -v jq >/dev/null && [[ -f $1 ]]; then
    jq -r '"read \(.totals.read), written \(.totals.written), duplicates skipped \(.totals.duplicates_skipped), failed \(.totals.failed), existing in target \(.existing_messages_in_target), jobs \(.jobs), exit status \(.exit_status)"' "$1" 2>/dev/null || echo "unreadable"
  else
    echo "n/a"
  fi
}
rep_a=$(mbx_report "$WORK/logs/mbxmerge-a.$ROUNDS.json") rep_b=$(mbx_report "$WORK/logs/mbxmerge-b.$ROUNDS.json")
mbx_exact_a=$([[ ${CHECK[mbxmerge]:-} == "$IDS_A $IDS_A 0 0 0 0" ]] && echo yes || echo NO)
mbx_exact_b=$([[ ${CHECK[mbxmerge-b]:-} == "$IDS_B $IDS_B 0 0 0 0" ]] && echo yes || echo NO)

disk_dev=$(df -P "$WORK" | awk 'NR == 2 { print $1 }')
# ext4 without a journal allocates inodes differently (see (h) of RESULTS.md).
fs_journal() {
  [[ $(findmnt -no FSTYPE -T "$WORK" 2>/dev/null) == ext4 ]] || return 0
  if ls /proc/fs/jbd2/ 2>/dev/null | grep -q "^${disk_dev##*/}-"; then echo " with a journal"; else echo " without a journal"; fi
}
{
  cat <<EOF
# Benchmark results

Head and sections (a), (b), (a2) generated by \`benchmarks/mime_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit
\`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git -C "$ROOT" diff --quiet HEAD -- cli engine formats 2>/dev/null || echo ' (with uncommitted changes in cli/, engine/ or formats/)').
Reproduce everything with \`make bench\` or \`benchmarks/run.sh\` (under an hour; \`ONLY="jobs recover"\` for some),
this part with \`ROUNDS=$ROUNDS SCALE=$SCALE SEED=$SEED benchmarks/mime_bench.sh\` (it took ${elapsed} s).
Each section below names the script, the command and the commit that produced it.

## Machine

- CPUs: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
- Memory: $(free -m | awk '/^Mem:/ { printf "%.1f GiB", $2 / 1024 }')
- Disk: $(df -hP "$WORK" | awk 'NR == 2 { print $2 " " $1 }'), $(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK")$(fs_journal), reported as $(lsblk -ndo ROTA "$disk_dev" 2>/dev/null | tr -d ' ' | sed 's/^1$/rotational/; s/^0$/non-rotational/' || echo unknown)
- Load: others may share the machine; see the load averages under "Raw timings".
- Kernel: $(uname -r); compiler: $(c++ --version | head -n 1)
- Tools: procmail $(dpkg-query -W -f='${Version}' procmail 2>/dev/null), mblaze $(dpkg-query -W -f='${Version}' mblaze 2>/dev/null), Dovecot $(doveadm -c "$DOVE_CONF" -Version 2>/dev/null || dovecot --version 2>/dev/null)

## Method

- mbxmerge is a Release build (\`$BUILD_DIR\`).
- Inputs: \`mbxgen pair --messages $TOTAL_MESSAGES --dup-rate $DUP_RATE --avg-size $AVG_SIZE --seed $SEED\`
  (mbox pair for (a), Maildir pair for (b)). Every message carries \`X-Mbxgen-Id\`;
  duplicates share it (with different trace headers); the manifest lists each distinct id once.
- Page cache cannot be dropped in a container, so every input is warm instead: a
  warm-up round, not counted, reads every input file and runs mbxmerge ((a) and (b))
  and Dovecot once (the others' runs are not repeated there: their input is in
  the page cache already, and the fork- and fsync-bound ones take minutes).
  Then $ROUNDS measured rounds, tools side by side in each round. \`sync\` runs
  (untimed) before every timed command, so none pays for another's dirty pages.
  Figures are medians over the measured rounds. Seconds and peak RSS come from
  \`/usr/bin/time -f '%e %M'\` around the whole command (a pipeline counts as its largest process).
- MB/s and messages/s are input bytes (MiB) and input messages over the median wall time:
  (a) $MSGS_A messages, $(fmt "$(div "$BYTES_A" 1048576)" %.0f) MiB in the two mboxes;
  (b) $MSGS_B messages, $(fmt "$(div "$BYTES_B" 1048576)" %.0f) MiB in A and B together
  (both tools must read A to dedupe; B alone is $MSGS_B_ONLY messages).
- Correctness (first and last measured rounds): every output is counted by \`benchmarks/count_ids.sh\`: messages,
  distinct X-Mbxgen-Id values, manifest ids missing (lost), and copies beyond the first (duplicates kept).
  **exact** means every manifest id exactly once.
- Output preparation (empty Maildir, fresh copies of A and B) is not timed.

## (a) Two mboxes into a new Maildir

$MSGS_A messages in total, $IDS_A distinct ids, $(awk -v d="$DUP_RATE" 'BEGIN { print d * 100 }')% of B's messages duplicate A's.

$(header mbxmerge)
$(row mbxmerge "\`mbxmerge merge --from a.mbox --from b.mbox --into maildir:OUT\`" "$BYTES_A" "$MSGS_A" "$r_m" "$IDS_A")
$(row formail-mbox "\`cat a.mbox b.mbox \| formail -D 100000000 idcache -s > OUT.mbox\`" "$BYTES_A" "$MSGS_A" "$r_m" "$IDS_A")
$(row formail-sh "\`formail -D 100000000 idcache -s sh -c 'cat > OUT/new/\$FILENO' < sample.mbox\` ($MSGS_S-message sample)" "$BYTES_S" "$MSGS_S" "$r_m" "$IDS_S")
$(row mdeliver "\`cat a.mbox b.mbox \| mdeliver -M OUT\` (mblaze)" "$BYTES_A" "$MSGS_A" "$r_m" "$IDS_A")

- formail (procmail) twice: \`-D\` into one mbox is its best case (one process, no
  delivery, no fsync, not even a Maildir); \`-D -s\` with a tiny per-message
  delivery command is how procmail-style setups fill a Maildir. It forks \`sh\` and
  \`cat\` for every message (and for every dropped duplicate too, with empty input,
  whose empty file the command removes), so it ran on a sample of $MSGS_S messages
  (the first $((FORMAIL_SAMPLE / 2)) of each mbox, $IDS_S distinct ids); its ratio is on messages/s.
- formail -D keys on Message-ID only: distinct messages that share a Message-ID
  (look-alikes) are lost (the "lost" column).
- mdeliver does no dedupe: every duplicate is kept (the "extra copies" column); it fsyncs every message.
- Targets: throughput >= 10x formail's (its Maildir delivery): $v_a1
  (for reference: $(fmt "$x_fmb" %.2f)x the throughput of formail -D into one mbox, which delivers nothing).
  Faster than mdeliver: $v_a2.
  mbxmerge's output holds every manifest id exactly once: **$mbx_exact_a**
  (its own report, last round: $rep_a).

## (b) Maildir B merged into a copy of Maildir A

$MSGS_B messages in A and B ($MSGS_B_ONLY in B), $IDS_B distinct ids. Each tool starts from a fresh copy of A (\`cp -al\`, not timed; neither tool rewrites an existing message file).

$(header mbxmerge)
$(row mbxmerge-b "\`mbxmerge merge --from maildir:B --into maildir:A\`" "$BYTES_B" "$MSGS_B" "$r_mb" "$IDS_B")
$(row dovecot "\`doveadm import maildir:B '' all\` + \`doveadm deduplicate -m mailbox '*'\` (Dovecot)" "$BYTES_B" "$MSGS_B" "$r_mb" "$IDS_B")

- \`doveadm deduplicate -m\` keys on Message-ID only (without -m it keys on Dovecot's
  GUIDs, which differ for every imported file, so nothing would be removed): look-alikes are lost.
  Dovecot ran as the unprivileged user \`$DOVE_USER\` with a standalone config
  (\`-o mail_location=maildir:A\`, no auth, no SSL), both commands timed together.
- Target: no slower than 1.5x Dovecot: $v_b.
  mbxmerge's result holds every manifest id exactly once: **$mbx_exact_b**
  (its own report, last round: $rep_b).
- Both tools hard-link the message files of B into A (same file system; Dovecot's
  \`maildir_copy_with_hardlinks\` default, mbxmerge unless \`--no-hardlinks\`).

## (a2) mbxmerge --jobs on (a)

$(header "--jobs 2")
$(row mbxmerge-j1 "\`mbxmerge merge ... --jobs 1\`" "$BYTES_A" "$MSGS_A" "$r_j2" "$IDS_A")
$(row "$JOBS2_LABEL" "\`mbxmerge merge ... --jobs 2\`$([[ $JOBS2_LABEL == mbxmerge ]] && echo ' (the default on 2 CPUs: the run of (a))')" "$BYTES_A" "$MSGS_A" "$r_j2" "$IDS_A")

Speed-up of --jobs 2 over --jobs 1: $(fmt "$(div "$r_j2" "$r_j1")" %.2fx) on $(nproc) CPUs.

## Raw timings

Every run (round 0 is the warm-up): label, round, wall seconds, peak RSS KiB, status, user and system CPU seconds.
Load average before the run: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg).

\`\`\`
$(cat "$RAW")
\`\`\`
EOF
  if [[ $MICRO == 1 && -x $BUILD_DIR/benchmarks/mbx_bench ]]; then
    log "running micro-benchmarks"
    echo
    echo "## Micro-benchmarks (\`mbx_bench\`, Release)"
    echo
    echo '```'
    "$BUILD_DIR/benchmarks/mbx_bench" --benchmark_min_time=0.3 2>&1 | grep -v '^\*\*\*'
    echo '```'
  fi
} >"$OUT.tmp"
# Keep the sections the other scripts maintain in the same file, in their order.
if [[ -f $OUT ]]; then
  python3 - "$OUT" "$OUT.tmp" <<'PY'
import sys
old, new = open(sys.argv[1]).read(), open(sys.argv[2]).read()
mine = {line[3:].split(" ")[0] for line in new.splitlines() if line.startswith("## ")}
kept = [p for p in old.split("\n## ")[1:] if p.split("\n")[0].split(" ")[0] not in mine]
open(sys.argv[2], "w").write(new.rstrip("\n") + "\n" + "".join("\n## " + p.rstrip("\n") + "\n" for p in kept))
PY
fi
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
