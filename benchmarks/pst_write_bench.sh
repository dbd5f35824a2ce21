#!/usr/bin/env bash
# PST writer benchmark (issues 6 and 7): writing PSTs with our MS-PST writer,
# measured against plain `cp` of the same input bytes (the I/O floor), side by
# side in one run, several rounds, medians. Three workloads:
#   (1) PST -> PST: COPIES copies of each real Outlook PST/OST merged into one
#       new PST (--dedupe none, so every copy is written);
#   (2) mbox -> PST: a generated mbox (samples/mbxgen) into a new PST;
#   (3) a generated mailbox over 4 GiB, one folder of 100,000 messages, as a
#       PST (made from a generated mbox, not timed) merged PST -> PST, with
#       the writer's peak memory.
# Every output is checked (mbxmerge check: 0 violations; message count).
# Writes the section "## (d) PST writer vs cp" of benchmarks/RESULTS.md.
#
#   benchmarks/pst_write_bench.sh
#
# Environment:
#   DATA_DIR=/work/shared/data/outlook   real PST/OST files (workload 1 is skipped if absent)
#   COPIES=20      copies of each real file
#   MESSAGES=20000 messages in the generated mbox (about 11 KB each)
#   ROUNDS=3       measured rounds; figures are medians
#   BIG_MESSAGES=100000 messages of about 25 KB, one folder, in workload (3) (0 skips it);
#                  the default makes a PST over 4 GiB, and needs ~20 GB free
#   BIG_ROUNDS=1   rounds of workload (3)
#   MBXMERGE=... MBXGEN=...  prebuilt binaries; otherwise a Release build in BUILD_DIR
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_DIR=${DATA_DIR:-/work/shared/data/outlook}
COPIES=${COPIES:-20}
MESSAGES=${MESSAGES:-20000}
ROUNDS=${ROUNDS:-3}
BIG_MESSAGES=${BIG_MESSAGES:-100000}
BIG_ROUNDS=${BIG_ROUNDS:-1}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/pstbench}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=$ROOT/benchmarks/work/pstwrite
SECTION='## (d) PST writer vs cp'

log() { printf '[pst-write-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z ${MBXMERGE:-} || -z ${MBXGEN:-} ]]; then
  log "building mbxmerge and mbxgen (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMBX_BUILD_TESTS=OFF -DMBX_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target mbxmerge mbxgen >/dev/null
  MBXMERGE=$BUILD_DIR/cli/mbxmerge
  MBXGEN=$BUILD_DIR/samples/mbxgen
fi
[[ -x $MBXMERGE && -x $MBXGEN ]] || die "binaries not found"

rm -rf "$WORK"
mkdir -p "$WORK"

# Seconds (wall clock) of one command, stdout/stderr discarded.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
# "SECONDS PEAK_KIB" of one command (GNU time), stdout/stderr discarded.
seconds_rss() {
  /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$@" >/dev/null 2>&1
  cat "$WORK/time.txt"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mbps() { python3 -c "print(f'{$1 / 1048576 / $2:.1f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# cp of the inputs into a fresh directory, then sync: the I/O floor.
copy_floor() {
  rm -rf "$WORK/cp" && mkdir -p "$WORK/cp"
  cp "$@" "$WORK/cp/" && sync
}

check_pst() {  # FILE EXPECTED_MESSAGES
  local out
  out=$("$MBXMERGE" check "$1") || die "mbxmerge check failed on $1: $out"
  [[ $out == *"0 violations"* ]] || die "violations in $1: $out"
  [[ $out == *", $2 messages"* ]] || die "$1: expected $2 messages: $out"
}

rows=()

# ------------------------------------------------------------ (1) PST -> PST
shopt -s nullglob nocaseglob
REAL=("$DATA_DIR"/*.pst "$DATA_DIR"/*.ost)
shopt -u nocaseglob
if ((${#REAL[@]} > 0)); then
  mkdir -p "$WORK/in"
  inputs=()
  for f in "${REAL[@]}"; do
    for ((i = 1; i <= COPIES; i++)); do
      dst="$WORK/in/$(basename "${f%.*}")-$i.${f##*.}"
      cp "$f" "$dst"
      inputs+=("$dst")
    done
  done
  bytes=$(cat "${inputs[@]}" | wc -c)
  per_copy=0
  for f in "${REAL[@]}"; do
    n=$("$MBXMERGE" list "$f" | awk '/^TOTAL/ {print $2}')
    per_copy=$((per_copy + n))
  done
  expect=$((per_copy * COPIES))
  from=()
  for f in "${inputs[@]}"; do from+=(--from "$f"); done
  t_ours=() t_cp=()
  for ((r = 1; r <= ROUNDS; r++)); do
    rm -f "$WORK/out.pst"
    t_ours+=("$(seconds "$MBXMERGE" merge "${from[@]}" --into "$WORK/out.pst" --dedupe none --quiet)")
    check_pst "$WORK/out.pst" "$expect"
    t_cp+=("$(seconds copy_floor "${inputs[@]}")")
  done
  mo=$(median "${t_ours[@]}")
  mc=$(median "${t_cp[@]}")
  log "PST -> PST: $bytes bytes, mbxmerge ${mo}s, cp ${mc}s"
  rows+=("| PST -> PST: ${#REAL[@]} Outlook files x $COPIES ($((bytes / 1048576)) MB, $expect messages) | $mo s ($(mbps "$bytes" "$mo") MB/s) | $mc s ($(mbps "$bytes" "$mc") MB/s) | $(ratio "$mo" "$mc")x |")
else
  log "PST -> PST skipped: no PST/OST files in '$DATA_DIR'"
fi

# ------------------------------------------------------------ (2) mbox -> PST
"$MBXGEN" mailbox --format mbox --out "$WORK/src.mbox" --messages "$MESSAGES" --seed 42 >/dev/null
bytes=$(wc -c <"$WORK/src.mbox")
t_ours=() t_cp=()
for ((r = 1; r <= ROUNDS; r++)); do
  rm -f "$WORK/gen.pst"
  t_ours+=("$(seconds "$MBXMERGE" merge --from "$WORK/src.mbox" --into "$WORK/gen.pst" --dedupe none --quiet)")
  check_pst "$WORK/gen.pst" "$MESSAGES"
  t_cp+=("$(seconds copy_floor "$WORK/src.mbox")")
done
mo=$(median "${t_ours[@]}")
mc=$(median "${t_cp[@]}")
log "mbox -> PST: $bytes bytes, mbxmerge ${mo}s, cp ${mc}s"
rows+=("| mbox -> PST: $MESSAGES generated messages ($((bytes / 1048576)) MB) | $mo s ($(mbps "$bytes" "$mo") MB/s) | $mc s ($(mbps "$bytes" "$mc") MB/s) | $(ratio "$mo" "$mc")x |")

# ------------------------------------------ (3) a generated mailbox over 4 GiB
big_note=""
if ((BIG_MESSAGES > 0)); then
  log "generating $BIG_MESSAGES messages and their PST (setup, not timed)"
  "$MBXGEN" mailbox --format mbox --out "$WORK/big.mbox" --messages "$BIG_MESSAGES" \
    --avg-size 25000 --seed 44 >/dev/null
  "$MBXMERGE" merge --from "$WORK/big.mbox" --into "$WORK/big.pst" --dedupe none --quiet
  rm -f "$WORK/big.mbox"
  check_pst "$WORK/big.pst" "$BIG_MESSAGES"
  bytes=$(stat -c %s "$WORK/big.pst")
  t_ours=() t_cp=() rss=()
  for ((r = 1; r <= BIG_ROUNDS; r++)); do
    rm -f "$WORK/big-out.pst"
    read -r secs kib < <(seconds_rss "$MBXMERGE" merge --from "$WORK/big.pst" \
      --into "$WORK/big-out.pst" --dedupe none --quiet)
    t_ours+=("$secs")
    rss+=("$kib")
    check_pst "$WORK/big-out.pst" "$BIG_MESSAGES"
    out_bytes=$(stat -c %s "$WORK/big-out.pst")
    rm -f "$WORK/big-out.pst"
    t_cp+=("$(seconds copy_floor "$WORK/big.pst")")
    rm -rf "$WORK/cp"
  done
  mo=$(median "${t_ours[@]}")
  mc=$(median "${t_cp[@]}")
  peak=$(($(median "${rss[@]}") / 1024))
  log "big PST -> PST: $bytes bytes, mbxmerge ${mo}s (peak ${peak} MiB), cp ${mc}s"
  rows+=("| PST -> PST: generated mailbox, $BIG_MESSAGES messages in one folder ($(python3 -c "print(f'{$bytes / 2**30:.2f}')") GiB PST in, $(python3 -c "print(f'{$out_bytes / 2**30:.2f}')") GiB out) | $mo s ($(mbps "$bytes" "$mo") MB/s) | $mc s ($(mbps "$bytes" "$mc") MB/s) | $(ratio "$mo" "$mc")x |")
  big_note="Peak memory of the generated-mailbox merge: $peak MiB (GNU time, max RSS)."
  rm -f "$WORK/big.pst"
fi

# ------------------------------------------------------------ RESULTS.md
section=$(
  cat <<EOF
$SECTION

Our MS-PST writer against \`cp\` of the same input bytes followed by \`sync\`
(the I/O floor), $ROUNDS rounds, medians; machine: $(nproc) cores, $(uname -sr).
Every output passed \`mbxmerge check\` with the expected message count.
Reproduce: \`COPIES=$COPIES MESSAGES=$MESSAGES ROUNDS=$ROUNDS BIG_MESSAGES=$BIG_MESSAGES BIG_ROUNDS=$BIG_ROUNDS benchmarks/pst_write_bench.sh\`.

| workload | mbxmerge | cp + sync | mbxmerge / cp |
|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

$big_note

Target (issue 6): within 4x of cp.
EOF
)
python3 - "$OUT" "$SECTION" "$section" <<'PY'
import sys, re
path, title, body = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmark results\n"
pattern = re.compile(r"^" + re.escape(title) + r"\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(body.rstrip() + "\n\n", text)
else:
    text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
open(path, "w").write(text)
PY
log "wrote $SECTION to $OUT"
