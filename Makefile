# masklab. On a fresh Debian 12 machine `make demo` and `make test` install
# what is missing (scripts/install-deps.sh), build, and run.
BUILD_DIR ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
MASKLAB := $(BUILD_DIR)/masklab

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# One run of each core strategy on the built-in tasks, same seed: the same job.
demo: build
	@for s in full completion_only weighted:0.1; do \
	  $(MASKLAB) train --strategy $$s --seed 1 --out results/demo/$$(echo $$s | tr ':' '_') || exit $$?; \
	done
	@echo "run records: results/demo/*/metrics.json"

clean:
	rm -rf $(BUILD_DIR)
