# Helpers sourced by the benchmark scripts (after they set ROOT, WORK, OUT and BENCH).

log() { printf '[%s %s] %s\n' "$BENCH" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Outputs are moved aside (discard), not deleted, until the script ends.
# Reason: on ext4 without a journal (this machine's root file system), for a
# minute after a file is deleted (minutes while its inode-table block is
# dirty) the inode allocator will not reuse its inode, and it finds that out
# by looking the block up in the buffer cache, one deleted inode after another
# (the kernel's recently_deleted()). A 6,000-file Maildir merge run right after
# `rm -rf` of the previous round's output spent 5 s in the kernel instead of
# 0.5 s (perf: recently_deleted and find_get_block_common, 60% of the
# samples), and which run paid for it depended on the order of the runs.
# Their cached pages are dropped, though: while a round's freshly written
# outputs stay in the page cache, the next round's writes cost up to three
# times the system time (a PST -> mbox merge: 0.16 s of system time in a
# clean cache, 0.52 s after 1.9 GB of files were written and synced, 0.16 s
# again once those files were deleted or their pages dropped), and the
# rounds after the first ran 30% slower than it.
TRASH=$WORK/.trash
discard() {  # path...
  local p
  for p in "$@"; do
    [[ -e $p || -L $p ]] || continue
    mkdir -p "$TRASH"
    sync
    python3 - "$p" <<'PY'
import os, sys
def drop(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
root = sys.argv[1]
if os.path.isdir(root):
    for d, _, files in os.walk(root):
        for f in files:
            drop(os.path.join(d, f))
else:
    drop(root)
PY
    mv "$p" "$TRASH/$(date +%s%N)-${p##*/}"
  done
}
# Deletes what was discarded, then waits until the allocator may reuse it:
# whatever is timed next must not pay for this deletion.
empty_trash() {
  [[ -d $TRASH ]] || return 0
  log "deleting the discarded outputs"
  rm -rf "$TRASH"
  settle
}
# Deletes a directory left by an earlier run, with the same wait.
purge() {  # dir
  [[ -e $1 ]] || return 0
  rm -rf "$1"
  settle
}
# After a mass deletion: written back, then every clean cache dropped (as
# root), the block device's cached inode-table blocks with them: an inode
# whose block is not cached counts as long gone. Dropping only dentries and
# inodes (drop_caches 2) was not enough: ten minutes after deleting 40,000
# files a Maildir merge still spent half its samples in recently_deleted().
# This drops the inputs' pages too: scripts warm their inputs after it.
settle() {
  sync
  echo 3 2>/dev/null >/proc/sys/vm/drop_caches || true
  sleep 36
}

# write_section HEADING FILE: puts FILE's text into $OUT as the section whose
# heading line starts with HEADING (replacing an earlier one, or appended).
write_section() {
  python3 - "$OUT" "$1" "$2" <<'PY'
import os, sys
path, heading, body = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip() + "\n"
text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
parts = text.split("\n## ")
for i, part in enumerate(parts[1:], 1):
    if ("## " + part).startswith(heading):
        parts[i] = body[3:].rstrip("\n") + "\n"
        break
else:
    parts[-1] = parts[-1].rstrip("\n") + "\n"
    parts.append(body[3:])
text = "\n## ".join(parts)
open(path + ".tmp", "w").write(text.rstrip("\n") + "\n")
os.replace(path + ".tmp", path)
PY
}

# build_release BENCHMARKS TARGET...: a Release build of TARGETs in $BUILD_DIR,
# with the micro-benchmarks configured when BENCHMARKS is ON.
# -Wno-error=restrict: GCC 12 at -O3 reports a false -Wrestrict inside
# std::string's operator+ (GCC bug 105651); it stays a warning here.
build_release() {
  local benchmarks=$1
  shift
  log "building Release in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF \
    -DCMAKE_CXX_FLAGS=-Wno-error=restrict -DMBX_BUILD_BENCHMARKS="$benchmarks" >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "$@" >/dev/null
}
