#!/usr/bin/env bash
# Comparison (5) of the throughput issue on single merges: --jobs 1 (the whole
# merge on one thread) against --jobs 2, side by side in each round, on
#   (1) one generated PST -> a new mbox, and
#   (2) two generated mboxes -> a new Maildir, with dedupe;
# each with the target on the disk and on tmpfs (the disk taken out: what the
# pipeline itself gains from a second core), and, in the same rounds, the
# disk's floor: dd writing as many bytes as the merge wrote, then fsync.
# Every output is checked: (1) every run wrote the same mbox, holding every
# message of the PST; (2) the Maildir holds every manifest id exactly once
# (count_ids.sh). Writes the section "(f)" of RESULTS.md.
#
#   benchmarks/jobs_bench.sh
#
# Environment:
#   ROUNDS=5  PST_MESSAGES=4000  MBOX_MESSAGES=6000  AVG_SIZE=43690  SEED=42
#   TMPFS=/dev/shm (empty: no tmpfs runs)
#   BUILD_DIR=build/bench-release  OUT=benchmarks/RESULTS.md
#   NO_BUILD=1 MBXMERGE=... MBXGEN=...   use prebuilt binaries
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5}
PST_MESSAGES=${PST_MESSAGES:-4000}
MBOX_MESSAGES=${MBOX_MESSAGES:-6000}
AVG_SIZE=${AVG_SIZE:-43690}
SEED=${SEED:-42}
TMPFS=${TMPFS-/dev/shm}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
OUT=${OUT:-$ROOT/benchmarks/RESULTS.md}
WORK=$ROOT/benchmarks/work/jobs
COUNT=$ROOT/benchmarks/count_ids.sh

BENCH=jobs-bench
# shellcheck source=benchmarks/common.sh
source "$ROOT/benchmarks/common.sh"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

targets=(disk)
if [[ -n $TMPFS ]]; then
  [[ $(stat -f -c %T "$TMPFS" 2>/dev/null) == tmpfs ]] || die "TMPFS=$TMPFS is not a tmpfs"
  SHM=$TMPFS/mbxmerge-jobs-bench.$$
  mkdir -p "$SHM"
  trap 'rm -rf "$SHM"; empty_trash' EXIT
  targets+=(tmpfs)
fi

log "generating inputs"
"$MBXGEN" mailbox --format mboxdir --out "$WORK/pst-src" --messages "$PST_MESSAGES" --folders 6 \
  --avg-size "$AVG_SIZE" --seed "$SEED" >/dev/null
"$MBXMERGE" merge --from "mboxdir:$WORK/pst-src" --into "$WORK/in.pst" --quiet
"$MBXGEN" pair --format mbox --out-a "$WORK/a.mbox" --out-b "$WORK/b.mbox" \
  --messages "$MBOX_MESSAGES" --dup-rate 0.15 --avg-size "$AVG_SIZE" --seed "$SEED" \
  --manifest "$WORK/m.tsv" >/dev/null
pst_bytes=$(stat -c %s "$WORK/in.pst")
mbox_bytes=$(($(stat -c %s "$WORK/a.mbox") + $(stat -c %s "$WORK/b.mbox")))
pst_count=$("$MBXMERGE" list --json "$WORK/in.pst" | python3 -c \
  'import json,sys; print(sum(f["messages"] for f in json.load(sys.stdin)))')

RAW=$WORK/raw.tsv  # case target jobs round seconds rss_kb user_s sys_s
: >"$RAW"
timed() {  # case target jobs round command...
  local c=$1 t=$2 j=$3 r=$4
  shift 4
  sync
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$t" "$j" "$r" "$(tr ' ' '\t' <"$WORK/time")" >>"$RAW"
}
dir_for() { [[ $1 == disk ]] && echo "$WORK/out" || echo "$SHM"; }

cat "$WORK/in.pst" "$WORK/a.mbox" "$WORK/b.mbox" >/dev/null  # warm the page cache
fail=0
pst_out_bytes=0 md_out_bytes=0
for round in $(seq 0 "$ROUNDS"); do  # round 0 warms up and is not counted
  for target in "${targets[@]}"; do
    d=$(dir_for "$target")
    for jobs in 1 2; do
      mkdir -p "$d"
      out=$d/pst-$round-$jobs.mbox md=$d/md-$round-$jobs
      timed pst "$target" "$jobs" "$round" "$MBXMERGE" merge --from "$WORK/in.pst" \
        --into "$out" --jobs "$jobs" --quiet
      timed mbox "$target" "$jobs" "$round" "$MBXMERGE" merge --from "$WORK/a.mbox" \
        --from "$WORK/b.mbox" --into "maildir:$md" --jobs "$jobs" --quiet
      read -r _ _ missing extra _ _ < <("$COUNT" maildir "$md" "$WORK/m.tsv")
      if [[ $missing != 0 || $extra != 0 ]]; then
        log "mbox -> Maildir ($target, --jobs $jobs): $missing ids missing, $extra extra copies"
        fail=1
      fi
      if [[ ! -f $WORK/reference.mbox ]]; then
        n=$(grep -c '^From ' "$out" || true)
        [[ $n == "$pst_count" ]] || { log "PST -> mbox: $n messages, the PST has $pst_count"; fail=1; }
        cp "$out" "$WORK/reference.mbox"
        cp -a "$md" "$WORK/reference-md"  # what the Maildir floor copies
        pst_out_bytes=$(stat -c %s "$out")
        md_out_bytes=$(du -sb "$md" | cut -f1)
      fi
      cmp -s "$out" "$WORK/reference.mbox" ||
        { log "PST -> mbox ($target, --jobs $jobs) differs from the first run's mbox"; fail=1; }
      # Outputs on tmpfs go now (memory); on the disk they wait for the end.
      if [[ $target == tmpfs ]]; then rm -rf "$out" "$md"; else discard "$out" "$md"; fi
    done
  done
  # The disk's floor: (1) the same bytes as one file, written and fsynced;
  # (2) the same files (a copy of the first run's Maildir), then one sync.
  timed pst floor - "$round" dd if=/dev/zero of="$WORK/floor" bs=1M \
    count=$(((pst_out_bytes + 1048575) / 1048576)) conv=fsync status=none
  timed mbox floor - "$round" sh -c 'cp -a "$1" "$2" && sync' - "$WORK/reference-md" "$WORK/floor-md"
  discard "$WORK/floor" "$WORK/floor-md"
  log "round $round done"
done
[[ $fail == 0 ]] || die "an output was wrong; no figures written"
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RAW" "$pst_bytes" "$mbox_bytes" >"$WORK/table.md" <<'PY'
import statistics, sys
raw, in_bytes = sys.argv[1], {"pst": int(sys.argv[2]), "mbox": int(sys.argv[3])}
runs = {}
# Each round runs --jobs 1 and 2 one after the other: their ratio per round
# shows how far the machine's drift moves the one of the medians.
rounds = {}
for line in open(raw):
    c, t, j, r, secs, rss, usr, sys_ = line.split()
    if r != "0":
        runs.setdefault((c, t, j), []).append((float(secs), int(rss), float(usr), float(sys_)))
        rounds.setdefault((c, t, r), {})[j] = float(secs)
med = lambda k, i: statistics.median(x[i] for x in runs[k])
label = {"pst": "(1) PST -> mbox", "mbox": "(2) mbox + mbox -> Maildir"}
def per_round(c, t):
    rs = sorted(v["1"] / v["2"] for (c2, t2, _), v in rounds.items()
                if (c2, t2) == (c, t) and "1" in v and "2" in v)
    if not rs:
        return ""
    return "%.2fx-%.2fx, %d of %d >= 1.7x" % (rs[0], rs[-1], sum(x >= 1.7 for x in rs), len(rs))
print("| merge | target | --jobs | median s | MB/s (input) | CPU s (user + sys) | peak RSS MiB | --jobs 2 speed-up | per round |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|")
for c in ("pst", "mbox"):
    for t in ("disk", "tmpfs"):
        if (c, t, "1") not in runs:
            continue
        for j in ("1", "2"):
            s = med((c, t, j), 0)
            speed = "%.2fx" % (med((c, t, "1"), 0) / s) if j == "2" else ""
            print("| %s | %s | %s | %.2f | %.1f | %.2f + %.2f | %.1f | %s | %s |" % (
                label[c], t, j, s, in_bytes[c] / 2**20 / s, med((c, t, j), 2), med((c, t, j), 3),
                max(x[1] for x in runs[(c, t, j)]) / 1024, speed,
                per_round(c, t) if j == "2" else ""))
    f = med((c, "floor", "-"), 0)
    s1, s2 = med((c, "disk", "1"), 0), med((c, "disk", "2"), 0)
    bound = ("at most %.2fx (--jobs 1 / floor); --jobs 2 is %.2fx the floor" % (s1 / f, s2 / f)
             if f > 0 else "too quick to time (inputs too small)")
    how = ("`dd` of the bytes the merge wrote, then fsync" if c == "pst" else
           "`cp -a` of the Maildir the merge wrote, then sync")
    print("| %s | disk floor: %s | | %.2f | | | | %s | |" % (label[c], how, f, bound))
PY

cat >"$WORK/section.md" <<EOF
## (f) --jobs 1 vs --jobs 2 on one merge

Generated by \`benchmarks/jobs_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC at commit
\`$(git -C "$ROOT" rev-parse --short HEAD)\` (here: \`ROUNDS=$ROUNDS PST_MESSAGES=$PST_MESSAGES MBOX_MESSAGES=$MBOX_MESSAGES AVG_SIZE=$AVG_SIZE benchmarks/jobs_bench.sh\`;
the run took ${elapsed} s). Machine: $(nproc) CPUs; load averages $load_before before, $load_after after.

- \`--jobs 1\` runs the whole merge on one thread; \`--jobs 2\` reads, converts and
  fingerprints on two workers while one thread commits, and a PST source reads ahead
  on a helper thread (sharing our PST reader's read-only mapping of the file); an mbox
  target's 1 MiB writes, and each batch's last write and fsync, run on a thread of the
  sink's own, behind the committer (which stages the next batch meanwhile).
- (1) one PST of $pst_count messages ($(numfmt --to=iec "$pst_bytes")B), written by mbxmerge from
  \`mbxgen mailbox --format mboxdir --messages $PST_MESSAGES --folders 6\`, into a new mbox
  ($(numfmt --to=iec "$pst_out_bytes")B written);
  (2) \`mbxgen pair --format mbox --messages $MBOX_MESSAGES --dup-rate 0.15\`
  ($(numfmt --to=iec "$mbox_bytes")B) into a new Maildir, with dedupe ($(numfmt --to=iec "$md_out_bytes")B written).
- Each merge twice: into the disk (the file system of the inputs), and into tmpfs
  (\`$TMPFS\`: no disk to wait for, so what remains is the CPU work the second core can share).
  The disk floor, in the same rounds: for (1) \`dd if=/dev/zero bs=1M conv=fsync\` of as many
  bytes as the merge wrote; for (2) \`cp -a\` of the first run's Maildir and then \`sync\`: the
  same files created and made durable, with no merge work at all. A merge into that disk
  can only beat it by overlapping its writing with the disk's, so --jobs 1 / floor roughly
  bounds the speed-up.
- One warm-up round, then $ROUNDS rounds, everything side by side in each; medians. Outputs are
  kept until the end (see \`discard\` in \`benchmarks/lib.sh\`: deleting the last round's 5,100 files
  just before a Maildir run made that run up to 3x slower).
- *per round*: --jobs 1 / --jobs 2 within each measured round (the two run one after the
  other), the lowest and the highest, and in how many rounds it reaches the 1.7x of issue 7:
  how far the machine's drift between rounds moves the ratio of the medians.
- Correct: (1) every run wrote the same bytes, every message of the PST;
  (2) every manifest id exactly once (\`count_ids.sh\`). All **yes** (the script stops otherwise).

$(cat "$WORK/table.md")

Raw timings (case, target, jobs, round, seconds, peak RSS KiB, user s, sys s; round 0 is the warm-up):

\`\`\`
$(cat "$RAW")
\`\`\`
EOF
write_section "## (f) " "$WORK/section.md"
log "wrote section (f) of $OUT"
