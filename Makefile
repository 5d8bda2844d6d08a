# Thin wrapper over CMake. `make` builds build/deft and build/libdeft.{so,a}.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CUDA),1)
CMAKE_FLAGS += -DDEFT_CUDA=ON
endif

.PHONY: all deps test-deps test asan bench demo clean install fuzz

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

# make fuzz T=onnx S=600: one libFuzzer target (tests/fuzz/fuzz_<T>.c) for S seconds; T=all: each
fuzz: deps
	@./scripts/fuzz.sh $(T) $(or $(S),60)

demo: all
	@./scripts/demo.sh $(BUILD)

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
