# Thin wrapper over CMake. `make` builds build/deft and build/libdeft.{so,a};
# `make CUDA=1` builds build-cuda/ with the CUDA backend (nvcc, cuBLAS).
ifeq ($(CUDA),1)
BUILD ?= build-cuda
else
BUILD ?= build
endif
ASAN_BUILD ?= build-asan
CUDA_BUILD ?= build-cuda
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CUDA),1)
CMAKE_FLAGS += -DDEFT_CUDA=ON
endif

.PHONY: all deps test-deps test asan bench demo clean install fuzz cuda-check

all: deps $(BUILD)/Makefile
	@$(MAKE) --no-print-directory -C $(BUILD) -j$(JOBS)

# deps first even under make -j: cmake's find_library needs the packages installed
$(BUILD)/Makefile: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

deps:
	@./scripts/install-deps.sh

test-deps:
	@./scripts/install-deps.sh --test

test: test-deps all
	@./scripts/run-tests.sh $(BUILD)

asan: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDEFT_ASAN=ON $(CMAKE_FLAGS) >/dev/null
	@$(MAKE) --no-print-directory -C $(ASAN_BUILD) -j$(JOBS)
	@DEFT_ASAN=1 ./scripts/run-tests.sh $(ASAN_BUILD)

bench: test-deps all
	@./bench/run.sh $(BUILD)

# CI: compile the CUDA backend with nvcc (so it cannot rot on machines
# without a GPU) and run its op matrix: on the GPU where there is one
# (skipped otherwise), and in its host emulation everywhere.
cuda-check: deps
	@command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "cuda-check: no nvcc (CUDA toolkit) here"; exit 1; }
	@PATH="$$PATH:/usr/local/cuda/bin" cmake -S . -B $(CUDA_BUILD) -DCMAKE_BUILD_TYPE=Release -DDEFT_CUDA=ON >/dev/null
	@PATH="$$PATH:/usr/local/cuda/bin" $(MAKE) --no-print-directory -C $(CUDA_BUILD) -j$(JOBS) deft test_cpu_vs_ref
	@cd $(CUDA_BUILD) && ctest --output-on-failure -R 'test_op_matrix_cuda'

# make fuzz T=onnx S=600: one libFuzzer target (tests/fuzz/fuzz_<T>.c) for S seconds; T=all: each
fuzz: deps
	@./scripts/fuzz.sh $(T) $(or $(S),60)

demo: all
	@./scripts/demo.sh $(BUILD)

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
