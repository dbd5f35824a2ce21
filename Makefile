# Thin wrapper over CMake presets. `make demo` and `make test` are the two
# commands of the README; both install missing Debian packages first.
SHELL := /bin/bash
JOBS ?= $(shell nproc)

# Build and test dependencies (Debian 12 package names).
DEPS := build-essential cmake ninja-build pkg-config git \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libboost-iostreams-dev libzstd-dev libssl-dev \
  libgmime-3.0-dev libcli11-dev nlohmann-json3-dev libspdlog-dev \
  libpff-dev libbfio-dev \
  pff-tools pst-utils procmail mblaze dovecot-core \
  python3-icalendar python3-vobject python3-yaml

.PHONY: all deps build demo test test-release test-asan test-tsan bench clean

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

# The whole suite twice: a normal build, then AddressSanitizer + UBSan.
test: test-release test-asan

bench: deps
	./benchmarks/run.sh
	./benchmarks/pst_bench.sh

clean:
	rm -rf build
