#!/usr/bin/env bash
# Every benchmark of mbxmerge in one run (`make bench`): one Release build,
# then each comparison against its peer tools, side by side, on inputs
# generated deterministically by mbxgen; each script checks every output's
# correctness, not only its time, and writes its own section of
# benchmarks/RESULTS.md (with the machine, the command and the medians).
#
#   benchmarks/run.sh                    everything (under an hour on 2 cores)
#   ONLY="jobs recover" benchmarks/run.sh   some of them
#
#   mime       (a) two mboxes -> a new Maildir, with dedupe: formail -D, mdeliver
#              (b) Maildir into Maildir: doveadm import + deduplicate
#              (a2) --jobs 1 vs --jobs 2 on (a); micro-benchmarks (mbx_bench)
#   pst        (c) a folder of PST/OST files -> mbox: readpst, pffexport
#              (needs the real files of ../shared/data/outlook; skipped without)
#   pst_write  (d) PST -> PST against cp + sync of the same bytes
#   recover    (e) recover of a 200-user store, --jobs 1 vs 2, by mailbox size (plot)
#   jobs       (f) --jobs 1 vs 2 on one merge, on disk and tmpfs, with the disk's floor
#   scale      (g) throughput and peak memory from 1,000 to 1,000,000 messages and a
#              10 GiB mailbox (plot)
#
# Each script's own environment settings pass through (ROUNDS, SEED, ...; see
# its header). BUILD_DIR=build/bench-release; MBXMERGE=... MBXGEN=... with
# NO_BUILD=1 use prebuilt binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ONLY=${ONLY:-mime pst pst_write recover jobs scale}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
BENCH=bench
WORK=$ROOT/benchmarks/work  # the scripts' work folders are below it
# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"

for name in $ONLY; do
  [[ -f $ROOT/benchmarks/${name}_bench.sh ]] || die "no benchmark '$name' (benchmarks/${name}_bench.sh)"
done

[[ ${NO_BUILD:-0} == 1 ]] || build_release ON mbxmerge mbxgen mbx_bench
export MBXMERGE=${MBXMERGE:-$BUILD_DIR/cli/mbxmerge}
export MBXGEN=${MBXGEN:-$BUILD_DIR/samples/mbxgen}
export BUILD_DIR NO_BUILD=1
[[ -x $MBXMERGE && -x $MBXGEN ]] || die "mbxmerge or mbxgen missing in $BUILD_DIR"

started=$(date +%s)
failed=()
for name in $ONLY; do
  log "---- ${name}_bench.sh"
  t0=$(date +%s)
  if "$ROOT/benchmarks/${name}_bench.sh"; then
    log "---- ${name}_bench.sh done in $(($(date +%s) - t0)) s"
  else
    log "---- ${name}_bench.sh FAILED"
    failed+=("$name")
  fi
done
log "all done in $(($(date +%s) - started)) s; results in ${OUT:-benchmarks/RESULTS.md}"
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
