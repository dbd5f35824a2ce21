#!/usr/bin/env bash
# Comparison (4) and (5) of the throughput issue: a full `mbxmerge recover` of
# generated KB 278447 stores of 200 users, --jobs 1 against --jobs 2, at three
# mailbox sizes. Every run is checked (each recovered user's original mailbox
# holds every id of the manifest exactly once), then the figures and an SVG plot
# of throughput by job count and mailbox size go to RESULTS.md, section (e).
#
#   benchmarks/recover_bench.sh
#
# Environment:
#   ROUNDS=3  USERS=200  SIZES="25 100 400" (messages per mailbox)  SEED=42
#   BUILD_DIR=build/bench-release  OUT=benchmarks/RESULTS.md
#   NO_BUILD=1 MBXMERGE=... MBXGEN=...   use prebuilt binaries
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-200}
SIZES=${SIZES:-25 100 400}
SEED=${SEED:-42}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=$ROOT/benchmarks/work/recover
COUNT=$ROOT/benchmarks/count_ids.sh

BENCH=recover-bench
# shellcheck source=benchmarks/common.sh
source "$ROOT/benchmarks/common.sh"
RAW=$WORK/raw.tsv  # size jobs round seconds rss_kb messages bytes status
: >"$RAW"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Checks a recovered store against the generator's manifest: for every
# blank-connected user, the original mailbox holds each of the user's ids once.
check_store() {  # store manifest
  local store=$1 manifest=$2 bad=0
  while IFS=$'\t' read -r alias _ state _ _ _ _ original; do
    [[ $state == blank-connected ]] || continue
    local path=$store/mailboxes/${original%/} kind=mbox
    [[ $original == */ ]] && kind=maildir
    awk -F'\t' -v a="$alias" '$1 == a { print $3 }' "$manifest" >"$WORK/user.tsv"
    read -r _ _ missing extra _ _ < <("$COUNT" "$kind" "$path" "$WORK/user.tsv")
    if [[ $missing != 0 || $extra != 0 ]]; then
      log "$alias: $missing ids missing, $extra extra copies in $path"
      bad=1
    fi
  done <"$manifest.users"
  return $bad
}

for size in $SIZES; do
  base=$WORK/store-$size
  log "generating a store of $USERS users, $size messages per mailbox"
  "$MBXGEN" store --out "$base" --users "$USERS" --messages "$size" --seed "$SEED" \
    --manifest "$WORK/m-$size.tsv" >/dev/null
  for round in $(seq 0 "$ROUNDS"); do  # round 0 warms the page cache, not counted
    for jobs in 1 2; do
      discard "$WORK/run"
      cp -a "$base" "$WORK/run" && sync
      status=ok
      /usr/bin/time -o "$WORK/time" -f '%e %M' "$MBXMERGE" recover --store "$WORK/run" --jobs "$jobs" \
        --quiet --report "$WORK/report.json" || status="exit $?"
      check_store "$WORK/run" "$WORK/m-$size.tsv" || status=wrong
      read -r secs rss <"$WORK/time"
      read -r msgs bytes < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(u.get("read", 0) for u in r["users"]), sum(u.get("bytes_written", 0) for u in r["users"]))' \
        "$WORK/report.json")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$jobs" "$round" "$secs" "$rss" "$msgs" "$bytes" \
        "$status" >>"$RAW"
      log "size $size jobs $jobs round $round: ${secs}s ($status)"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - started))

# Medians over the measured rounds, a table and the plot.
python3 - "$RAW" "$WORK/plot.tsv" >"$WORK/section.md" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
pair = {}  # --jobs 1 and 2 run one after the other in each round: their ratio per round
for size, jobs, rnd, secs, rss, msgs, byts, status in rows:
    if rnd == "0":
        continue
    by.setdefault((int(size), int(jobs)), []).append((float(secs), int(rss), int(msgs), int(byts), status))
    pair.setdefault((int(size), rnd), {})[jobs] = float(secs)
sizes = sorted({s for s, _ in by})
def per_round(s):
    rs = sorted(v["1"] / v["2"] for (s2, _), v in pair.items() if s2 == s and "1" in v and "2" in v)
    return "%.2fx-%.2fx, %d of %d >= 1.7x" % (rs[0], rs[-1], sum(x >= 1.7 for x in rs), len(rs)) if rs else ""
print("| messages per mailbox | --jobs | median s | messages/s | MB/s | peak RSS MiB | correct | --jobs 2 speed-up | per round |")
print("|---:|---:|---:|---:|---:|---:|---|---:|---|")
rate = {}
for s in sizes:
    for j in (1, 2):
        runs = by.get((s, j), [])
        if not runs:
            continue
        secs = statistics.median(r[0] for r in runs)
        msgs, byts = runs[-1][2], runs[-1][3]
        rate[(s, j)] = msgs / secs
        ok = all(r[4] == "ok" for r in runs)
        speed = "" if j == 1 or (s, 1) not in rate else "%.2fx" % (rate[(s, 2)] / rate[(s, 1)])
        print("| %d | %d | %.2f | %.0f | %.1f | %.1f | %s | %s | %s |" % (
            s, j, secs, msgs / secs, byts / secs / 2**20, max(r[1] for r in runs) / 1024,
            "**yes**" if ok else "**NO**", speed, per_round(s) if j == 2 else ""))
met = ["%d (%.2fx)" % (s, rate[(s, 2)] / rate[(s, 1)]) for s in sizes
       if (s, 1) in rate and (s, 2) in rate and rate[(s, 2)] / rate[(s, 1)] >= 1.7]
unmet = ["%d (%.2fx)" % (s, rate[(s, 2)] / rate[(s, 1)]) for s in sizes
         if (s, 1) in rate and (s, 2) in rate and rate[(s, 2)] / rate[(s, 1)] < 1.7]
print()
print("- Target (issue 7): `--jobs 2` at least 1.7x `--jobs 1` on a full recover: %s." % "; ".join(
    x for x in ("**met** at %s messages per mailbox" % ", ".join(met) if met else "",
                "**not met** at %s" % ", ".join(unmet) if unmet else "") if x))
# The plot's data: messages/s by mailbox size, one line per job count.
with open(sys.argv[2], "w") as f:
    for j in (1, 2):
        for s in sizes:
            if (s, j) in rate:
                f.write("--jobs %d\t%d\t%.1f\n" % (j, s, rate[(s, j)]))
EOF

python3 "$ROOT/benchmarks/plot.py" "$ROOT/benchmarks/recover_jobs.svg" \
  "mbxmerge recover of a generated store: messages/s by mailbox size and --jobs" \
  "messages per mailbox" "messages/s" "$WORK/plot.tsv"
{
  echo "## (e) recover of a $USERS-user store: --jobs 1 vs --jobs 2"
  echo
  echo "Generated by \`benchmarks/recover_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC at commit"
  echo "\`$(git -C "$ROOT" rev-parse --short HEAD)\` (here: \`ROUNDS=$ROUNDS USERS=$USERS SIZES=\"$SIZES\" benchmarks/recover_bench.sh\`;"
  echo "the run took $elapsed s). Machine: $(nproc) CPUs; load averages $load_before before, $load_after after."
  echo
  echo "- Input: \`mbxgen store --users $USERS --messages M --seed $SEED\` for each M: the KB 278447 situation"
  echo "  (blank-connected users, users already fine, missing and orphan mailboxes, Maildir and mbox mixed)."
  echo "- Each run recovers a fresh \`cp -a\` of the store (not timed; the copies are kept until the end,"
  echo "  see \`discard\` in \`benchmarks/lib.sh\`); one warm-up round, then $ROUNDS"
  echo "  measured rounds, --jobs 1 and 2 side by side in each; medians. Messages/s and MB/s count the"
  echo "  messages read from the blank mailboxes and the bytes written (from the report)."
  echo "- *per round*: --jobs 1 / --jobs 2 within each measured round (the two run one after the other),"
  echo "  the lowest and the highest, and in how many rounds it reaches the 1.7x of issue 7."
  echo "- Correct: every blank-connected user's original mailbox holds each of the user's manifest ids"
  echo "  exactly once afterwards (\`benchmarks/count_ids.sh\`)."
  echo "- \`--jobs N\` merges N mailboxes at a time; the journal, reconnect.ldif and the report stay in user order."
  echo
  cat "$WORK/section.md"
  echo
  echo "![recover throughput by mailbox size and --jobs](recover_jobs.svg)"
} >"$WORK/section-e.md"
write_section "## (e) " "$WORK/section-e.md"
log "wrote section (e) of $OUT"
