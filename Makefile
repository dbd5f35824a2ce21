# Thin wrapper over CMake presets. `make demo` and `make test` are the two
# commands of the README; both install missing Debian packages first.
SHELL := /bin/bash
JOBS ?= $(shell nproc)

# Build and test dependencies (Debian 12 package names).
DEPS := build-essential cmake ninja-build pkg-config git \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libboost-iostreams-dev libzstd-dev zlib1g-dev libssl-dev \
  libgmime-3.0-dev libcli11-dev nlohmann-json3-dev libspdlog-dev \
  libpff-dev libbfio-dev libxxhash-dev \
  pff-tools pst-utils procmail mblaze dovecot-core \
  python3-icalendar python3-vobject python3-yaml

.PHONY: all deps build demo test test-release test-asan test-tsan bench fuzz clean

all: build

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@# Node.js runs the npm oracles (mailparser); any installed node will do.
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nodejs npm; \
	fi
	@if [ ! -d tests/node/node_modules/mailparser ] || [ ! -d tests/node/node_modules/pst-extractor ]; then \
	  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error || \
	  echo "warning: npm could not install tests/node (tests that need mailparser will skip)"; \
	fi

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

demo: build
	./samples/demo.sh build/release

test-release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	ctest --preset release -j $(JOBS)

test-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

test-tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS)

# The whole suite twice, a normal build and then AddressSanitizer + UBSan;
# then the pipeline and worker-pool tests under ThreadSanitizer.
test: test-release test-asan test-tsan

# libFuzzer harnesses (tests/fuzz): each fuzzer runs FUZZ_SECONDS on a writable
# copy of its seeds and past crashes (build/fuzz/corpus/<target>), crash
# artifacts go to build/fuzz/artifacts/<target>/; fails if any fuzzer crashed.
# Not part of `make test` (ctest replays the committed corpora there).
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?= mime mbox ldif mbxz pst_read pst_roundtrip
FUZZ_DEPS := clang libclang-rt-14-dev

fuzz: deps
	@missing=""; for p in $(FUZZ_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/artifacts/$$t; \
	  for d in tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t; do \
	    [ -d $$d ] && cp -n $$d/* build/fuzz/corpus/$$t/ 2>/dev/null; \
	  done; \
	  if [ $$t = pst_read ]; then \
	    for f in ../shared/data/outlook/pstsdk-*.pst; do [ -f "$$f" ] && cp -n "$$f" build/fuzz/corpus/$$t/; done; \
	  fi; \
	  case $$t in pst_read) max_len=300000;; pst_roundtrip) max_len=4096;; *) max_len=16384;; esac; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  build/fuzz/tests/fuzz/fuzz_$$t build/fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$$max_len -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/$$t/ || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (build/fuzz/artifacts/)"; exit 1; fi

bench: deps
	./benchmarks/run.sh

clean:
	rm -rf build
