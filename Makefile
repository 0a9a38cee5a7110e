# edge-collab: `make demo` sets everything up and answers a question with the
# default pair; `make test` sets up what it needs and runs the test suite.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Which llama.cpp build pip compiles: cpu (default), cuda or metal.
BACKEND ?= cpu
LLAMA_CPP_PYTHON := llama-cpp-python==0.3.36
# GGML_NATIVE=OFF: a native build crashes on x86 CPUs that advertise AMX inside
# some VMs, so on x86 the CPU features are named instead (GPU builds run CPU code too).
X86_CPU_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
CPU_ARGS := $(if $(filter x86_64 amd64,$(shell uname -m)),$(X86_CPU_ARGS))
CMAKE_ARGS_cpu := $(CPU_ARGS)
# --exclude-libs: libggml-cuda otherwise exports the C++ standard library code it
# links in statically, libllama binds to it and crashes loading any model (seen
# with CUDA 13.0; scripts/check_gpu_build.sh, README "GPU builds").
CUDA_LINK_ARGS := -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--exclude-libs,ALL
CMAKE_ARGS_cuda := -DGGML_CUDA=on $(CUDA_LINK_ARGS) $(CPU_ARGS)
CMAKE_ARGS_metal := -DGGML_METAL=on
# pip caches one built wheel per version whatever the flags; GPU builds must not reuse a CPU wheel.
PIP_REBUILD_cpu :=
PIP_REBUILD_cuda := --no-cache-dir --force-reinstall --no-deps
PIP_REBUILD_metal := --no-cache-dir --force-reinstall --no-deps

DEMO_QUESTION ?= A train leaves at 3:40 pm and the trip takes 2 hours 35 minutes. When does it arrive? Think step by step.

.PHONY: demo test check bench clean cmake-args

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.llama-$(BACKEND): | $(BIN)/python
	@echo "building $(LLAMA_CPP_PYTHON) for $(BACKEND) (about 5 minutes on 2 cores the first time)"
	CMAKE_ARGS="$(CMAKE_ARGS_$(BACKEND))" $(BIN)/pip install $(PIP_REBUILD_$(BACKEND)) "$(LLAMA_CPP_PYTHON)"
	rm -f $(VENV)/.llama-*
	touch $@

# The runtime and, for its tests and research, the lab beside it (lab/).
$(VENV)/.installed: pyproject.toml lab/pyproject.toml $(VENV)/.llama-$(BACKEND)
	$(BIN)/pip install --quiet -e ".[dev]" -e ./lab
	touch $@

demo: $(VENV)/.installed
	$(BIN)/edge-collab models install default
	$(BIN)/edge-collab run "$(DEMO_QUESTION)"

test: $(VENV)/.installed
	$(BIN)/python -m pytest

check: $(VENV)/.installed
	$(BIN)/ruff check edge_collab lab tests scripts
	$(BIN)/mypy edge_collab

bench: $(VENV)/.installed
	$(BIN)/edge-collab bench --out bench.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The flags the llama-cpp-python build gets (scripts/check_gpu_build.sh reads them).
cmake-args:
	@echo $(CMAKE_ARGS_$(BACKEND))
