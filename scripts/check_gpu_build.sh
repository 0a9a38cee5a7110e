#!/usr/bin/env bash
# Build llama-cpp-python for CUDA from its source archive and run the test
# suite with the tiny models offloaded to the GPU (tests/test_gpu_offload.py
# compares GPU and CPU logits; every other backend test runs offloaded too).
#
#   scripts/check_gpu_build.sh LLAMA_CPP_PYTHON_SOURCE [PYTEST ARGS...]
#
# LLAMA_CPP_PYTHON_SOURCE is an sdist (.tar.gz) or an unpacked source folder.
# CUDA_ARCH picks the GPU architecture (default: the card in this machine);
# EXTRA_CMAKE_ARGS are added (e.g. -DGGML_CUDA_FA=OFF for a quicker build);
# SITE is where both packages are installed (default: a new temporary folder).
# Build dependencies (scikit-build-core, cmake, ninja, nvcc) must be there:
# nothing is downloaded, so it works on a machine without internet.
set -euo pipefail
cd "$(dirname "$0")/.."
source=${1:?usage: scripts/check_gpu_build.sh LLAMA_CPP_PYTHON_SOURCE [PYTEST ARGS...]}
shift
PYTHON=${PYTHON:-python3}
SITE=${SITE:-$(mktemp -d)}
# The Makefile's CUDA flags: the linker flag keeps libggml-cuda from exporting
# the C++ library code it links statically (else every model load crashes with
# CUDA 13.0), GGML_NATIVE=OFF because a host CPU that advertises AMX faults.
export CMAKE_ARGS="-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-native} \
-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--exclude-libs,ALL -DGGML_NATIVE=OFF \
-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF ${EXTRA_CMAKE_ARGS:-}"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
start=$(date +%s)
$PYTHON -m pip install -q --no-deps --no-build-isolation --no-index --target "$SITE" "$source" .
echo "built and installed in $(($(date +%s) - start)) s into $SITE"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} EDGE_COLLAB_TEST_GPU_LAYERS=-1
$PYTHON -c 'import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else "built without GPU offload")'
# From outside the checkout, so the installed package (with its manifests) is the one imported.
root=$PWD
cd "$SITE" && $PYTHON -m pytest -q -p no:cacheprovider -c "$root/pyproject.toml" --rootdir "$root" "$root/tests" "$@"
