# masklab. On a fresh Debian 12 machine `make demo`, `make check` and
# `make test` install what is missing (scripts/install-deps.sh), build, and run.
#   make check   the fast tier (unit tests, CTest label `fast`)
#   make test    every test: the fast and the slow tier (end-to-end, browser,
#                PyTorch parity); also installs the test-only packages
#   make cuda    a second build, build-cuda/, against LibTorch 2.x with CUDA
#                (the PyPI torch wheel of scripts/python-env.sh)
#   make check-cuda  the fast tier against that build, on whatever device is here
#   make asan    the fast tier built with ASan + UBSan (clang-14), build-asan/
#   make fuzz    every libFuzzer target of fuzz/ for FUZZ_SECONDS each, same build
BUILD_DIR ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
MASKLAB := $(BUILD_DIR)/masklab

.PHONY: all deps test-deps test-packages build check test cuda check-cuda asan fuzz demo bench clean

all: build

deps:
	@scripts/install-deps.sh

# After deps, so that two apt runs never overlap under make -j.
# The PyPI reference environment (scripts/python-env.sh) lives outside the
# clone, under ~/.cache/masklab/, and is reused by every later run.
# test-packages: the Debian packages alone, enough for `make fuzz`.
test-packages: deps
	@scripts/install-deps.sh --test

test-deps: test-packages
	@scripts/python-env.sh > /dev/null
	@scripts/python-env.sh bench > /dev/null

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

# Each test has its own TIMEOUT (tests/CMakeLists.txt); --timeout only covers
# a test registered without one.
CTEST_ARGS := --output-on-failure -j2 --timeout 600
CTEST := ctest --test-dir $(BUILD_DIR) $(CTEST_ARGS)

check: build
	$(CTEST) -L '^fast$$'

test: test-deps build
	$(CTEST)

# LibTorch 2.x + CUDA from the torch wheel of the Python environment (outside
# the clone, reused). Its libtorch must win over Debian's in /usr/lib: the
# wheel's folder goes first in CMAKE_PREFIX_PATH. The binaries find the
# wheel's libraries by RPATH; without a GPU they run on the CPU.
CUDA_BUILD_DIR ?= build-cuda
TORCH_CUDA_ARCH_LIST ?= 9.0
cuda: deps
	@torch_dir=$$($$(scripts/python-env.sh) -c 'import os, torch; print(os.path.dirname(torch.__file__))') && \
	  mkdir -p $(CUDA_BUILD_DIR) && \
	  cmake -S . -B $(CUDA_BUILD_DIR) -G Ninja $(CMAKE_FLAGS) -DCMAKE_PREFIX_PATH="$$torch_dir;$$torch_dir/share/cmake" \
	    -DTORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" > $(CUDA_BUILD_DIR)/configure.log || \
	  { cat $(CUDA_BUILD_DIR)/configure.log; exit 1; }
	cmake --build $(CUDA_BUILD_DIR)

check-cuda: test-deps cuda
	ctest --test-dir $(CUDA_BUILD_DIR) $(CTEST_ARGS) -L '^fast$$'

# One sanitizer build (cmake/sanitize.cmake) serves `make asan` and `make fuzz`.
# LibTorch is not instrumented; the fast tier runs clean without any ASan
# option for it, and a leak suppression would go in cmake/lsan.supp with its
# reason. The environment applies to the build too: test discovery runs
# masklab_tests.
ASAN_BUILD_DIR ?= build-asan
ASAN_CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=Release -DMASKLAB_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++-14
# allocator_may_return_null: an allocation too large to grant fails as it
# does without ASan (LibTorch throws, masklab records out of memory), which a
# test checks, instead of ASan aborting on its own size limit.
SANITIZER_ENV := ASAN_OPTIONS=halt_on_error=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/cmake/lsan.supp:print_suppressions=0
FUZZ_SECONDS ?= 60

# clang-14 and its sanitizer runtimes are test-only packages.
$(ASAN_BUILD_DIR)/build.ninja: | test-packages
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja $(ASAN_CMAKE_FLAGS)

asan: test-deps $(ASAN_BUILD_DIR)/build.ninja
	$(SANITIZER_ENV) cmake --build $(ASAN_BUILD_DIR) --target masklab masklab_spm masklab_tests
	$(SANITIZER_ENV) ctest --test-dir $(ASAN_BUILD_DIR) $(CTEST_ARGS) -L '^fast$$'

fuzz: test-packages $(ASAN_BUILD_DIR)/build.ninja
	cmake --build $(ASAN_BUILD_DIR) --target masklab_fuzz
	$(SANITIZER_ENV) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(ASAN_BUILD_DIR)

# The quickstart sweep (full, completion_only, weighted:0.1 x 3 seeds) and its
# report. Rerunning resumes: finished runs are kept. The headline and the CSVs
# are copied to docs/results/quickstart/, the files the README quotes.
DEMO_DIR ?= results/quickstart
DEMO_RESULTS := docs/results/quickstart
demo: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) --target masklab masklab_spm
	@$(MASKLAB) sweep experiments/quickstart.yaml --out $(DEMO_DIR) --jobs 2; status=$$?; \
	  $(MASKLAB) report $(DEMO_DIR) > /dev/null && echo "report: $(DEMO_DIR)/report.html" && \
	  cp $(addprefix $(DEMO_DIR)/,headline.md summary.csv comparisons.csv runs.csv) $(DEMO_RESULTS)/ && \
	  echo "headline: $(DEMO_RESULTS)/headline.md"; exit $$status

# masklab against a PyTorch reference on identical jobs; writes bench/results.json.
bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD_DIR) $(CUDA_BUILD_DIR) $(ASAN_BUILD_DIR)
