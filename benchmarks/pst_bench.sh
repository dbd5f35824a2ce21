#!/usr/bin/env bash
# PST benchmark (issue 3): a folder of PST/OST files converted to mbox files by
# mbxmerge, readpst (pst-utils; plain and with its own -j 2) and pffexport
# (pff-tools), side by side in one run. Writes the section
# "## (c) PST folder -> mbox" of benchmarks/RESULTS.md (only that section).
#
#   benchmarks/pst_bench.sh
#
# Environment:
#   DATA_DIR=/work/shared/data/outlook   real PST/OST files (read-only; skipped cleanly if absent)
#   COPIES=30     copies of each input file in the input folder
#   ROUNDS=3      measured rounds (plus one untimed warm-up round); figures are medians
#   MBXMERGE=...  prebuilt binary; otherwise a Release build in BUILD_DIR=build/pstbench
#   OUT=benchmarks/RESULTS.md
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_DIR=${DATA_DIR:-/work/shared/data/outlook}
COPIES=${COPIES:-30}
ROUNDS=${ROUNDS:-3}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/pstbench}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=$ROOT/benchmarks/work/pst
SECTION='## (c) PST folder -> mbox'

log() { printf '[pst-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ ! -d $DATA_DIR ]]; then
  log "skipped: no PST data folder '$DATA_DIR' (set DATA_DIR to a folder of .pst/.ost files)"
  exit 0
fi
shopt -s nullglob nocaseglob
SOURCES=("$DATA_DIR"/*.pst "$DATA_DIR"/*.ost)
shopt -u nocaseglob
if ((${#SOURCES[@]} == 0)); then
  log "skipped: no .pst or .ost file in '$DATA_DIR'"
  exit 0
fi

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (apt-get install $2)"
}
need readpst pst-utils
need pffexport pff-tools
need python3 python3
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: install the Debian package 'time'"

# ---------------------------------------------------------------- mbxmerge (Release)
if [[ -z ${MBXMERGE:-} ]]; then
  log "building mbxmerge (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMBX_BUILD_TESTS=OFF -DMBX_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target mbxmerge >/dev/null
  MBXMERGE=$BUILD_DIR/cli/mbxmerge
fi
[[ -x $MBXMERGE ]] || die "mbxmerge binary '$MBXMERGE' not found"
export MBXMERGE

# ---------------------------------------------------------------- input folder
# Only files from which mbxmerge reads at least one message; the expected count
# is what `mbxmerge list --json` reports (summed over folders) times COPIES.
rm -rf "$WORK"
mkdir -p "$WORK/in" "$WORK/logs"
INPUT_DESC=()
EXPECTED_ONE=0
for src in "${SOURCES[@]}"; do
  n=$("$MBXMERGE" list --json "$src" |
    python3 -c 'import json,sys; print(sum(f["messages"] for f in json.load(sys.stdin)))') ||
    die "mbxmerge list --json '$src' failed"
  base=$(basename "$src")
  if ((n == 0)); then
    log "skipping $base: no messages"
    continue
  fi
  EXPECTED_ONE=$((EXPECTED_ONE + n))
  INPUT_DESC+=("\`$base\` ($(stat -c %s "$src") bytes; $n messages)")
  stem=${base%.*} ext=${base##*.}
  for ((c = 1; c <= COPIES; c++)); do
    cp "$src" "$WORK/in/$(printf '%s.%03d' "$stem" "$c").$ext"
  done
done
((EXPECTED_ONE > 0)) || { log "skipped: no input file with messages in '$DATA_DIR'"; exit 0; }
EXPECTED=$((EXPECTED_ONE * COPIES))
FILES=$(find "$WORK/in" -type f | wc -l)
IN_BYTES=$(du -cb "$WORK/in"/* | tail -1 | cut -f1)
IN_MIB=$(awk -v b="$IN_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')
log "input: $FILES files, $IN_MIB MiB, $EXPECTED messages expected (mbxmerge list)"

# ---------------------------------------------------------------- the tools
# Each runs over the whole input folder, one process per input file (as a
# user converting a folder of PSTs would), output in a fresh directory $1.
# The file list is NUL-separated: names contain '@'.
list_inputs() { find "$WORK/in" -type f -print0 | sort -z; }
export -f list_inputs
export WORK

run_mbx_seq() {
  list_inputs | while IFS= read -r -d '' f; do
    b=$(basename "$f")
    "$MBXMERGE" merge --from "$f" --into "$1/${b%.*}.mbox" --quiet || exit 1
  done
}
run_mbx_p2() {  # $2: extra mbxmerge options (word-split)
  list_inputs | OUTD=$1 MBX_OPTS=${2:-} xargs -0 -P 2 -n 1 sh -c \
    'b=$(basename "$1"); exec "$MBXMERGE" merge --from "$1" --into "$OUTD/${b%.*}.mbox" --quiet $MBX_OPTS' sh
}
run_mbx_dir() {  # the whole folder in one run: every file under its own name
  "$MBXMERGE" merge --from "pstdir:$WORK/in" --into "mboxdir:$1/all" --quiet
}
run_readpst() {  # $2: readpst -j value (0 = no parallelism)
  list_inputs | while IFS= read -r -d '' f; do
    b=$(basename "$f")
    mkdir -p "$1/${b%.*}"
    readpst -q -j "$2" -o "$1/${b%.*}" "$f" >/dev/null || exit 1
  done
}
run_pffexport() {
  list_inputs | while IFS= read -r -d '' f; do
    b=$(basename "$f")
    pffexport -q -t "$1/${b%.*}" "$f" >/dev/null || exit 1
  done
}
export -f run_mbx_seq run_mbx_p2 run_mbx_dir run_readpst run_pffexport

# Messages written. mbox files: "From " separator lines (both write mboxrd-style
# quoting of body lines). readpst writes calendar items as iCalendar files, not
# mbox: those count as VEVENTs. pffexport: item directories (Message00001,
# Appointment00001, ...) outside attachment directories.
count_mbox() { find "$1" -type f -name '*.mbox*' -print0 | xargs -0 -r cat | grep -c '^From ' || true; }
count_ics() { find "$1" -type f -name '*.calendar' -print0 | xargs -0 -r cat | grep -c '^BEGIN:VEVENT' || true; }
count_pff() {
  find "$1" -type d -regextype posix-extended \
    -regex '.*/(Message|Appointment|Meeting|Contact|Task|Note|Activity|Document|Distribution list|Item)[0-9]{5}' \
    -not -path '*/Attachment*' | wc -l
}

TOOLS=(mbx_dir mbx_seq mbx_p2 mbx_p2_j1 mbx_libpff readpst readpst_j2 pffexport)
declare -A CMD=(
  [mbx_dir]="mbxmerge merge --from pstdir:IN --into mboxdir:OUT --quiet"
  [mbx_seq]="mbxmerge merge --from X.pst --into OUT/X.mbox --quiet"
  [mbx_p2]="xargs -P 2 ... mbxmerge merge --from X.pst --into OUT/X.mbox --quiet"
  [mbx_p2_j1]="xargs -P 2 ... mbxmerge merge --from X.pst --into OUT/X.mbox --quiet -j 1"
  [mbx_libpff]="MBXMERGE_PST_READER=libpff xargs -P 2 ... mbxmerge merge ... -j 1"
  [readpst]="readpst -q -j 0 -o OUT/X X.pst"
  [readpst_j2]="readpst -q -j 2 -o OUT/X X.pst"
  [pffexport]="pffexport -q -t OUT/X X.pst"
)
declare -A HOW=(
  [mbx_dir]="the whole folder in one run (each file under its own name)"
  [mbx_seq]="one file after another"
  [mbx_p2]="2 files at a time"
  [mbx_p2_j1]="2 files at a time, one thread each"
  [mbx_libpff]="as the row above, reading through libpff (the reader before this change)"
  [readpst]="one file after another, no parallelism"
  [readpst_j2]="one file after another, readpst's own 2 jobs"
  [pffexport]="one file after another"
)

run_tool() {  # $1 tool, $2 round label; prints "seconds rss_kib"
  local tool=$1 round=$2 out=$WORK/out/$1 tf=$WORK/logs/$1.$2.time
  rm -rf "$out"
  mkdir -p "$out"
  local -a cmd
  case $tool in
    mbx_seq) cmd=(bash -c 'run_mbx_seq "$1"' _ "$out") ;;
    mbx_dir) cmd=(bash -c 'run_mbx_dir "$1"' _ "$out") ;;
    mbx_p2) cmd=(bash -c 'run_mbx_p2 "$1"' _ "$out") ;;
    mbx_p2_j1) cmd=(bash -c 'run_mbx_p2 "$1" "-j 1"' _ "$out") ;;
    mbx_libpff) cmd=(env MBXMERGE_PST_READER=libpff bash -c 'run_mbx_p2 "$1" "-j 1"' _ "$out") ;;
    readpst) cmd=(bash -c 'run_readpst "$1" 0' _ "$out") ;;
    readpst_j2) cmd=(bash -c 'run_readpst "$1" 2' _ "$out") ;;
    pffexport) cmd=(bash -c 'run_pffexport "$1"' _ "$out") ;;
  esac
  sync  # no tool pays for the previous one's dirty pages
  if ! /usr/bin/time -f '%e %M' -o "$tf" "${cmd[@]}" >"$WORK/logs/$tool.$round.out" 2>"$WORK/logs/$tool.$round.err"; then
    # Ours must not fail; a peer that crashes is reported, and its other rounds count.
    [[ $tool == mbx_* ]] && die "$tool failed in round $round (see $WORK/logs/$tool.$round.err)"
    echo "failed failed"
    return
  fi
  tail -1 "$tf"
}

count_tool() {  # $1 tool; prints "mail calendar total"
  local out=$WORK/out/$1 m c
  case $1 in
    mbx_*) m=$(count_mbox "$out"); c=0 ;;
    readpst*) m=$(count_mbox "$out"); c=$(count_ics "$out") ;;
    pffexport) m=$(count_pff "$out"); c=0 ;;
  esac
  echo "$m $c $((m + c))"
}

# ---------------------------------------------------------------- rounds
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm-up (not timed): the input into the page cache (1 GiB at most by default;
# a full warm-up pass of every tool would double the run time).
log "warm-up: reading the input"
cat "$WORK/in"/* >/dev/null
declare -A SECS RSS COUNT VARIED FAILED
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TOOLS[@]}"; do
    read -r s k < <(run_tool "$t" "$r")
    if [[ $s == failed ]]; then
      why=$(grep -v '^ *$' "$WORK/logs/$t.$r.err" | sed -n 1p | cut -c1-120)
      FAILED[$t]+="round $r: \`$why\`; "
      log "$t failed in round $r (not counted): $why"
      continue
    fi
    SECS[$t]+="$s "
    RSS[$t]+="$k "
    log "round $r: $t ${s}s ${k}KiB"
    c=$(count_tool "$t")
    [[ -n ${COUNT[$t]:-} ]] || COUNT[$t]=$c
    if [[ $c != "${COUNT[$t]}" ]]; then
      # Ours must be deterministic; a peer that is not is reported, not fatal.
      [[ $t == mbx_* ]] && die "$t wrote a different number of messages in round $r: $c vs ${COUNT[$t]}"
      VARIED[$t]+="round $r: $c (total $(echo "$c" | cut -d' ' -f3)); "
      log "$t wrote a different number of messages in round $r: $c vs ${COUNT[$t]}"
    fi
  done
done
ELAPSED=$(($(date +%s) - START))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
declare -A MED PEAK
for t in "${TOOLS[@]}"; do
  [[ -n ${SECS[$t]:-} ]] || die "$t failed in every round: ${FAILED[$t]}"
  MED[$t]=$(echo "${SECS[$t]}" | median)
  PEAK[$t]=$(echo "${RSS[$t]}" | tr ' ' '\n' | grep . | sort -g | tail -1)
done

read -r MBX_MAIL _ _ <<<"${COUNT[mbx_seq]}"
read -r MBX_P2_MAIL _ _ <<<"${COUNT[mbx_p2]}"
read -r MBX_P2_J1_MAIL _ _ <<<"${COUNT[mbx_p2_j1]}"
read -r MBX_LIBPFF_MAIL _ _ <<<"${COUNT[mbx_libpff]}"
read -r MBX_DIR_MAIL _ _ <<<"${COUNT[mbx_dir]}"
MBX_OK=no
[[ $MBX_MAIL == "$EXPECTED" && $MBX_P2_MAIL == "$EXPECTED" && $MBX_P2_J1_MAIL == "$EXPECTED" &&
  $MBX_LIBPFF_MAIL == "$EXPECTED" && $MBX_DIR_MAIL == "$EXPECTED" ]] && MBX_OK=yes

# ---------------------------------------------------------------- report
best_mbx=mbx_seq
for t in mbx_p2 mbx_p2_j1 mbx_dir; do
  awk -v a="${MED[$t]}" -v b="${MED[$best_mbx]}" 'BEGIN { exit !(a < b) }' && best_mbx=$t
done
READER_GAIN=$(awk -v a="${MED[mbx_libpff]}" -v b="${MED[mbx_p2_j1]}" 'BEGIN { printf "%.2f", a / b }')
best_readpst=readpst
awk -v a="${MED[readpst_j2]}" -v b="${MED[readpst]}" 'BEGIN { exit !(a < b) }' && best_readpst=readpst_j2
RATIO=$(awk -v r="${MED[$best_readpst]}" -v m="${MED[$best_mbx]}" 'BEGIN { printf "%.2f", r / m }')
VERDICT="not met"
awk -v x="$RATIO" 'BEGIN { exit !(x >= 2) }' && VERDICT="met"

# Per-file start-up: mbxmerge and readpst on the smallest input, 10 runs.
# sed reads to the end: `head -1` could exit while sort still writes, and
# with pipefail the SIGPIPE it gets stopped the script without a word.
SMALL=$(find "$WORK/in" -type f -printf '%s %p\n' | sort -n | sed -n 1p | cut -d' ' -f2-)
mean10() {  # command...; prints its mean wall seconds over 10 runs
  local t0 t1 i d=$WORK/out/single
  rm -rf "$d"
  mkdir -p "$d"/{1..10}  # output directories made before timing
  t0=$(date +%s.%N)
  for i in 1 2 3 4 5 6 7 8 9 10; do
    "$@" "$d/$i" >/dev/null 2>&1 || true
  done
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 10 }'
}
st_mbx() { "$MBXMERGE" merge --from "$SMALL" --into "$1/x.mbox" --quiet; }
st_readpst() { readpst -q -j 0 -o "$1" "$SMALL"; }
st_true() { "$MBXMERGE" --version; }
ST_MBX=$(mean10 st_mbx)
BIG=$(find "$WORK/in" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
big_mbx() { "$MBXMERGE" merge --from "$BIG" --into "$1/x.mbox" --quiet; }
big_readpst() { readpst -q -j 0 -o "$1" "$BIG"; }
BIG_MBX=$(mean10 big_mbx)
BIG_READPST=$(mean10 big_readpst)
big_list() { "$MBXMERGE" list "$BIG"; }
BIG_LIST=$(mean10 big_list)
ST_READPST=$(mean10 st_readpst)
ST_VERSION=$(mean10 st_true)

TABLE=$(
  echo "| tool | runs | median s | MB/s (input) | messages/s | peak RSS MiB | messages out (mail + calendar) | mbxmerge speed-up over it |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for t in "${TOOLS[@]}"; do
    read -r m c tot <<<"${COUNT[$t]}"
    awk -v s="${MED[$t]}" -v mib="$IN_MIB" -v n="$EXPECTED" -v k="${PEAK[$t]}" -v base="${MED[$best_mbx]}" \
      -v cmd="${CMD[$t]}" -v how="${HOW[$t]}" -v m="$m" -v c="$c" -v tot="$tot" 'BEGIN {
        out = (c > 0) ? sprintf("%d (%d + %d)", tot, m, c) : sprintf("%d", tot)
        printf "| `%s` | %s | %.2f | %.1f | %.0f | %.1f | %s | %.2fx |\n", cmd, how, s, mib / s, n / s, k / 1024, out, s / base }'
  done
)

SHA=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
SECTION_TEXT=$(
  cat <<EOF
$SECTION

Generated by \`benchmarks/pst_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC at commit \`$SHA\`
(here: \`COPIES=$COPIES ROUNDS=$ROUNDS benchmarks/pst_bench.sh\`; the timed part took $ELAPSED s).
mbxmerge: \`$MBXMERGE\` ($(grep -s '^CMAKE_BUILD_TYPE' "$(dirname "$(dirname "$MBXMERGE")")/CMakeCache.txt" | cut -d= -f2 || true) build);
$(readpst -V 2>&1 | head -1); $(pffexport -V 2>&1 | head -1).
Machine: $(nproc) CPUs, shared with other work: load averages $LOAD_START before the timed part, $LOAD_END after.

- Input: a folder of $FILES files, $IN_MIB MiB: $COPIES copies each of the real PST/OST files
  in \`$DATA_DIR\` that hold messages: $(printf '%s, ' "${INPUT_DESC[@]}" | sed 's/, $//').
  $EXPECTED messages in all by \`mbxmerge list --json\` (sum over folders) times $COPIES.
- Every tool converts every file with one process per file (one folder of PSTs, as a
  user would script it), into a fresh output directory (not timed). One untimed warm-up
  round, then $ROUNDS measured rounds, tools side by side in each round; \`sync\` (untimed)
  before every command; figures are medians. Seconds and peak RSS from
  \`/usr/bin/time -f '%e %M'\` around the whole loop (peak RSS = the largest process).
- MB/s = input MiB / median s; messages/s = the $EXPECTED input messages / median s, for every tool.
- Messages out: \`^From \` lines across the mbox files (mbxmerge, readpst); readpst writes
  calendar items to iCalendar files, not mbox, so its VEVENTs are added; pffexport: item
  directories (\`Message00001\`, \`Appointment00001\`, \`Meeting00001\`, ...) outside attachments.
  The counts were identical in every round$( ((${#VARIED[@]} == 0)) || printf ', except: %s' "$(for t in "${!VARIED[@]}"; do printf '%s (first round %s; %s) ' "$t" "${COUNT[$t]}" "${VARIED[$t]%; }"; done)").$( ((${#FAILED[@]} == 0)) || printf ' Peer runs that failed, left out of the medians: %s' "$(for t in "${!FAILED[@]}"; do printf "%s (%s) " "$t" "${FAILED[$t]%; }"; done)")

$TABLE

- mbxmerge's count equals \`mbxmerge list --json\` times the copies ($EXPECTED): **$MBX_OK**
  (the folder in one run: $MBX_DIR_MAIL, sequential: $MBX_MAIL, 2 at a time: $MBX_P2_MAIL and $MBX_P2_J1_MAIL, through libpff: $MBX_LIBPFF_MAIL).
- \`--from pstdir:IN\` reads the folder as one source, each file's folders under the file's
  name (\`IN/alice.pst\` -> \`OUT/alice/Inbox.mbox\`, \`OUT/alice/Sent.mbox\`, ...), one file open at a
  time; the default \`--dedupe-scope folder\` keeps the copies apart, so every message of every
  copy is written, as readpst writes them. readpst and pffexport take one file per run.
- mbxmerge reads Unicode PSTs and OSTs (4 KiB-page ones too) through its own reader
  (\`formats/pst/native_store.h\`) and ANSI files through libpff; with libpff for all
  (\`MBXMERGE_PST_READER=libpff\`, the reader before) the same run is ${READER_GAIN}x slower.
- Not like for like: mbxmerge writes every item, calendar ones too, as a MIME message
  into the mbox; readpst writes $(read -r _ c _ <<<"${COUNT[readpst]}"; echo "$c") of its items as
  iCalendar VEVENTs (\`.calendar\` files) and drops $((EXPECTED - $(read -r _ _ t <<<"${COUNT[readpst]}"; echo "$t"))) items
  (e.g. both pstsdk-test_*.pst give it an empty directory). mbxmerge also fsyncs its output files and directories; readpst and pffexport do not.
- Target: at least 2x readpst's throughput, best variant against best variant
  (mbxmerge ${HOW[$best_mbx]}: ${MED[$best_mbx]} s; readpst ${HOW[$best_readpst]}: ${MED[$best_readpst]} s):
  **$VERDICT** (${RATIO}x).
- One file at a time, mean of 10 runs each (not part of the table):
  smallest input (\`$(basename "$SMALL")\`, $(stat -c %s "$SMALL") bytes): mbxmerge merge ${ST_MBX} s, readpst ${ST_READPST} s,
  \`mbxmerge --version\` alone ${ST_VERSION} s;
  largest input (\`$(basename "$BIG")\`, $(stat -c %s "$BIG") bytes): mbxmerge merge ${BIG_MBX} s, readpst ${BIG_READPST} s,
  \`mbxmerge list\` alone (opening the file, walking its folders and reading each message's size) ${BIG_LIST} s.
- Where mbxmerge's time goes: process start-up (\`--version\`) is about
  $(awk -v v="$ST_VERSION" -v f="$FILES" -v s="${MED[mbx_seq]}" 'BEGIN { printf "%.1f s of the sequential run'"'"'s %.2f s (%.0f%%)", v * f, s, 100 * v * f / s }');
  \`mbxmerge list\` above is
  $(awk -v l="$BIG_LIST" -v m="$BIG_MBX" 'BEGIN { printf "%.0f%%", 100 * l / m }') of the largest file's conversion time.
EOF
)

printf '%s\n' "$SECTION_TEXT" >"$WORK/section.md"
# Replace only this section (up to the next "## " heading), or append it.
python3 - "$OUT" "$SECTION" "$WORK/section.md" <<'PYEOF'
import os, sys
path, head, sec = sys.argv[1:4]
text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
new = open(sec).read().rstrip("\n") + "\n"
lines = text.split("\n")
start = next((i for i, l in enumerate(lines) if l.strip() == head), None)
if start is None:
    text = text.rstrip("\n") + "\n\n" + new
else:
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    rest = "\n".join(lines[end:])
    text = "\n".join(lines[:start]) + "\n" + new + ("\n" + rest if rest else "")
open(path, "w").write(text)
PYEOF
log "wrote '$SECTION' in $OUT"
printf '%s\n' "$SECTION_TEXT"
