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
# Build dependencies (make, scikit-build-core, cmake, ninja, nvcc) must be there:
# nothing is downloaded, so it works on a machine without internet.
set -euo pipefail
cd "$(dirname "$0")/.."
source=${1:?usage: scripts/check_gpu_build.sh LLAMA_CPP_PYTHON_SOURCE [PYTEST ARGS...]}
shift
PYTHON=${PYTHON:-python3}
SITE=${SITE:-$(mktemp -d)}
# The Makefile's CUDA flags, so this checks the build users get (among them the
# linker flag without which every model load crashed with CUDA 13.0), plus the
# architecture and no llama.cpp programs.
export CMAKE_ARGS="$(make -s --no-print-directory cmake-args BACKEND=cuda) \
-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-native} -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF ${EXTRA_CMAKE_ARGS:-}"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
start=$(date +%s)
$PYTHON -m pip install -q --no-deps --no-build-isolation --no-index --target "$SITE" "$source" . ./lab
echo "built and installed in $(($(date +%s) - start)) s into $SITE"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} EDGE_COLLAB_TEST_GPU_LAYERS=-1
$PYTHON -c 'import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else "built without GPU offload")'
# From outside the checkout, so the installed package (with its manifests) is the one imported.
root=$PWD
cd "$SITE" && $PYTHON -m pytest -q -p no:cacheprovider -c "$root/pyproject.toml" --rootdir "$root" "$root/tests" "$@"
