# Thin wrapper over CMake: the README's commands.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build demo test test-clang test-asan test-tsan test-debug bench soak install deps clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/examples/tour

deps:
	@scripts/deps.sh

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-clang: deps
	$(MAKE) test BUILD=build-clang CMAKE_ARGS="-DCMAKE_C_COMPILER=clang -DMOTE_BENCH=OFF"

test-asan: deps
	$(MAKE) test BUILD=build-asan CMAKE_ARGS="-DMOTE_SANITIZE=address -DMOTE_BENCH=OFF"

test-tsan: deps
	$(MAKE) test BUILD=build-tsan CMAKE_ARGS="-DMOTE_SANITIZE=thread -DMOTE_BENCH=OFF"

# Internal invariants checked (MOTE_ASSERT), under ASan+UBSan.
test-debug: deps
	$(MAKE) test BUILD=build-debug CMAKE_ARGS="-DMOTE_DEBUG=ON -DMOTE_SANITIZE=address -DMOTE_BENCH=OFF"

bench: build
	bench/run.sh $(BUILD)

# Mixed workload for SOAK_SECONDS (default 600), checking counts and RSS.
soak: build
	$(BUILD)/tests/soak

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The manual: man pages and HTML under $(BUILD)/docs (needs pandoc).
.PHONY: docs
docs: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) --target docs

clean:
	rm -rf build build-clang build-asan build-tsan build-debug build-aarch64 build-fuzz
