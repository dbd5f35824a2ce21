#!/usr/bin/env bash
# Throughput and peak memory by mailbox size (the throughput issue's "flat from
# 1,000 to 1,000,000 messages" and "under 256 MiB for a mailbox up to 10 GiB"):
#   (g1) two generated mboxes -> a new mbox, with dedupe, at each size in SIZES;
#   (g2) one generated mailbox of about BIG_GIB GiB -> a new mbox.
# Every output is checked against the generator's manifest (count_ids.sh: every
# id exactly once). Writes the section "(g)" of RESULTS.md.
#
#   benchmarks/scale_bench.sh
#
# Environment:
#   SIZES="1000 10000 100000 1000000"  AVG_SIZE=4096  ROUNDS=3 (sizes up to 100,000)
#   BIG_GIB=10 (0 skips g2)  BIG_AVG_SIZE=43690  JOBS=2  SEED=42
#   BUILD_DIR=build/bench-release  OUT=benchmarks/RESULTS.md
#   NO_BUILD=1 MBXMERGE=... MBXGEN=...   use prebuilt binaries
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-1000 10000 100000 1000000}
AVG_SIZE=${AVG_SIZE:-4096}
ROUNDS=${ROUNDS:-3}
BIG_GIB=${BIG_GIB:-10}
BIG_AVG_SIZE=${BIG_AVG_SIZE:-43690}
JOBS=${JOBS:-2}
SEED=${SEED:-42}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=${WORK:-$ROOT/benchmarks/work/scale}
COUNT=$ROOT/benchmarks/count_ids.sh

BENCH=scale-bench
# shellcheck source=benchmarks/common.sh
source "$ROOT/benchmarks/common.sh"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ROWS=$WORK/rows.tsv  # label messages bytes seconds rss_kb correct pipeline_seconds
: >"$ROWS"
TIMEFORMAT=%3R  # bash's time: milliseconds (GNU time's %e has 10 ms steps, a fifth of a 1,000-message run)

# One timed merge: prints "wall_seconds rss_kb pipeline_seconds", the last
# from the JSON report (the merge itself, without starting the process).
timed_merge() {  # out sources...
  local out=$1 args=() f
  shift
  for f in "$@"; do args+=(--from "$f"); done
  rm -f "$out"
  sync
  { time /usr/bin/time -f '%M' -o "$WORK/rss" \
    "$MBXMERGE" merge "${args[@]}" --into "$out" --jobs "$JOBS" --quiet \
    --report "$WORK/report.json" >/dev/null; } 2>"$WORK/wall"
  echo "$(cat "$WORK/wall") $(cat "$WORK/rss") $(python3 -c \
    'import json, sys; print(json.load(open(sys.argv[1]))["timings"]["total_seconds"])' \
    "$WORK/report.json")"
}

# Median of column $1 of the lines on stdin.
median() { sort -g -k"$1","$1" | awk -v c="$1" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'; }

# Runs one merge ROUNDS times (once for the largest inputs) and records the
# median seconds and the largest peak RSS, after checking the output.
measure() {  # label rounds manifest out sources...
  local label=$1 rounds=$2 manifest=$3 out=$4
  shift 4
  local bytes=0 f
  for f in "$@"; do bytes=$((bytes + $(stat -c %s "$f"))); done
  : >"$WORK/times"
  for r in $(seq 1 "$rounds"); do timed_merge "$out" "$@" >>"$WORK/times"; done
  read -r messages _ missing extra _ _ < <("$COUNT" mbox "$out" "$manifest")
  local correct=yes
  [[ $missing == 0 && $extra == 0 ]] || correct="no ($missing lost, $extra extra)"
  local read_messages=0
  for f in "$@"; do read_messages=$((read_messages + $(grep -c '^From ' "$f" || true))); done
  local secs rss pipeline
  secs=$(median 1 <"$WORK/times")
  pipeline=$(median 3 <"$WORK/times")
  rss=$(sort -n -k2,2 "$WORK/times" | tail -1 | cut -d' ' -f2)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$read_messages" "$bytes" "$secs" "$rss" \
    "$correct" "$pipeline" >>"$ROWS"
  log "$label: $read_messages messages, $secs s ($pipeline s in the pipeline), peak $((rss / 1024)) MiB, correct: $correct"
  rm -f "$out"
}

# What every run costs whatever its size: an empty mbox into a new mbox
# (starting the process, opening and locking, the target's first fsyncs).
: >"$WORK/empty.mbox"
: >"$WORK/times"
for r in $(seq 1 $((ROUNDS * 3))); do timed_merge "$WORK/out.mbox" "$WORK/empty.mbox" >>"$WORK/times"; done
FIXED=$(median 1 <"$WORK/times")
log "fixed cost of a run: $FIXED s (median of $((ROUNDS * 3)) empty merges)"
rm -f "$WORK/out.mbox" "$WORK/empty.mbox"

for n in $SIZES; do
  log "generating a pair of $n messages"
  "$MBXGEN" pair --format mbox --out-a "$WORK/a.mbox" --out-b "$WORK/b.mbox" --messages "$n" \
    --dup-rate 0.15 --avg-size "$AVG_SIZE" --seed "$SEED" --manifest "$WORK/m.tsv" >/dev/null
  cat "$WORK/a.mbox" "$WORK/b.mbox" >/dev/null
  rounds=$ROUNDS
  ((n > 100000)) && rounds=1
  measure "$n" "$rounds" "$WORK/m.tsv" "$WORK/out.mbox" "$WORK/a.mbox" "$WORK/b.mbox"
  rm -f "$WORK/a.mbox" "$WORK/b.mbox"
done

if ((BIG_GIB > 0)); then
  big_n=$((BIG_GIB * 1073741824 / BIG_AVG_SIZE))
  log "generating one mailbox of $big_n messages (~$BIG_GIB GiB)"
  "$MBXGEN" mailbox --format mbox --out "$WORK/big.mbox" --messages "$big_n" \
    --avg-size "$BIG_AVG_SIZE" --seed "$SEED" --manifest "$WORK/big.tsv" >/dev/null
  measure "big" 1 "$WORK/big.tsv" "$WORK/big-out.mbox" "$WORK/big.mbox"
  rm -f "$WORK/big.mbox"
fi
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The plot: messages/s by mailbox size (the pairs; the big mailbox's messages are 10x larger).
awk -F'\t' -v jobs="$JOBS" -v fixed="$FIXED" '$1 != "big" {
    printf "--jobs %s, end to end\t%d\t%.1f\n", jobs, $1, $2 / $4
    printf "--jobs %s, beyond the fixed cost\t%d\t%.1f\n", jobs, $1, $2 / ($4 - fixed)
    printf "--jobs %s, in the pipeline\t%d\t%.1f\n", jobs, $1, $2 / $7
  }' "$ROWS" >"$WORK/plot.tsv"
python3 "$ROOT/benchmarks/plot.py" "$ROOT/benchmarks/scale.svg" \
  "mbxmerge: two mboxes with dedupe into a new mbox, messages/s by size" \
  "messages (both mboxes)" "messages/s" "$WORK/plot.tsv"

section=$(
  cat <<EOF
## (g) Throughput and memory by mailbox size

Generated by \`benchmarks/scale_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC at commit
\`$(git -C "$ROOT" rev-parse --short HEAD)\` (here: \`SIZES="$SIZES" AVG_SIZE=$AVG_SIZE ROUNDS=$ROUNDS BIG_GIB=$BIG_GIB JOBS=$JOBS benchmarks/scale_bench.sh\`;
the run took ${elapsed} s). Machine: $(nproc) CPUs; load averages $load_before before, $load_after after.

- Each size: \`mbxgen pair --format mbox --messages N --dup-rate 0.15 --avg-size $AVG_SIZE\`,
  both mboxes merged with dedupe into a new mbox (\`--jobs $JOBS\`): the dedupe index,
  the pipeline and the target grow with N, nothing else does. Median of $ROUNDS rounds
  up to 100,000 messages, one round above. Peak RSS: the largest of the rounds.
- The big mailbox: \`mbxgen mailbox --format mbox --avg-size $BIG_AVG_SIZE\`, about $BIG_GIB GiB,
  into a new mbox.
- Correct: the output holds every manifest id exactly once (\`count_ids.sh\`).
- Times to the millisecond (bash's \`time\`). The fixed cost of a run, whatever its
  size: **$(awk -v f="$FIXED" 'BEGIN { printf "%.0f", f * 1000 }') ms**, the median of $((ROUNDS * 3)) merges of an empty mbox into a new mbox
  (starting the process and loading its libraries, opening and locking, the target's first
  fsyncs). "Beyond the fixed cost" divides by the time minus that; "in the pipeline" is the
  merge's own clock from \`--report\` (no process start, but the last batch's fsync).

| input | messages | MiB | median s | messages/s | beyond the fixed cost | in the pipeline | MB/s | peak RSS MiB | correct |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|
EOF
  awk -F'\t' -v fixed="$FIXED" '{
    label = $1 == "big" ? "one mailbox" : "pair of " $1
    printf "| %s | %d | %.0f | %.3f | %.0f | %.0f | %.0f | %.1f | %.1f | %s |\n", label, $2,
      $3 / 1048576, $4, $2 / $4, $2 / ($4 - fixed), $2 / $7, $3 / 1048576 / $4, $5 / 1024, $6
  }' "$ROWS"
  echo
  awk -F'\t' -v fixed="$FIXED" 'function keep(i, r) { if (min[i] == "" || r < min[i]) min[i] = r; if (r > max[i]) max[i] = r }
    $1 != "big" { keep(1, $2 / $4); keep(2, $2 / ($4 - fixed)); keep(3, $2 / $7) }
    $1 != "big" && $2 >= 10000 { keep(4, $2 / $4); keep(5, $2 / ($4 - fixed)); keep(6, $2 / $7) }
    END {
      if (max[1] == 0) exit
      printf "Spread of messages/s across the sizes (the slowest as a share of the fastest): "
      printf "end to end %.0f%%, beyond the fixed cost %.0f%%, in the pipeline %.0f%%",
        100 * min[1] / max[1], 100 * min[2] / max[2], 100 * min[3] / max[3]
      if (max[4] > 0 && min[4] < max[4])
        printf "; from 10,000 messages up: %.0f%%, %.0f%%, %.0f%%",
          100 * min[4] / max[4], 100 * min[5] / max[5], 100 * min[6] / max[6]
      printf ".\n"
    }' "$ROWS"
  echo
  echo "![messages/s by mailbox size](scale.svg)"
)

python3 - "$OUT" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pattern = re.compile(r"## \(g\) Throughput and memory by mailbox size\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(lambda m: section.rstrip() + "\n", text) if pattern.search(text) \
    else text.rstrip() + "\n\n" + section.rstrip() + "\n"
open(path, "w").write(text)
PY
log "wrote section (g) of $OUT"
