# Sourced by the benchmark scripts after they set ROOT, BUILD_DIR, WORK and
# BENCH (the name their log lines carry): log/die, a Release build of mbxmerge
# and mbxgen in BUILD_DIR (unless NO_BUILD=1 with MBXMERGE and MBXGEN given),
# and a fresh, empty WORK.

# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: install the Debian package 'time'"

[[ ${NO_BUILD:-0} == 1 ]] || build_release OFF mbxmerge mbxgen
MBXMERGE=${MBXMERGE:-$BUILD_DIR/cli/mbxmerge}
MBXGEN=${MBXGEN:-$BUILD_DIR/samples/mbxgen}
[[ -x $MBXMERGE && -x $MBXGEN ]] || die "mbxmerge or mbxgen missing in $BUILD_DIR"

purge "$WORK"
mkdir -p "$WORK"
trap empty_trash EXIT
