#!/usr/bin/env bash
# Build llama-cpp-python's vendored llama.cpp as shared libraries (only the `llama` target and the
# ggml libraries it links), for the Python package in the same source tree to load through
# LLAMA_CPP_LIB_PATH. Skipping pip's wheel step, the `common` and `mtmd` libraries (which the
# binding does not need for text generation) saves device time; the C/CUDA code is the same.
#
# usage: build_llama.sh BUNDLE_DIR WORK_DIR cuda|cpu [JOBS] [--configure-only]
#   BUNDLE_DIR: folder from make_bundle.sh (llama_src.tar.gz, llama_src.name)
#   WORK_DIR:   where the source is unpacked and built; prints the env lines to use the build.
set -euo pipefail

bundle=${1:?usage: build_llama.sh BUNDLE_DIR WORK_DIR cuda|cpu [JOBS] [--configure-only]}
work=${2:?work dir}
backend=${3:?cuda or cpu}
jobs=${4:-$(nproc)}
configure_only=${5:-}
mkdir -p "$work"
work=$(cd "$work" && pwd)
name=$(cat "$bundle/llama_src.name")
src="$work/$name"
build="$work/build-$backend"

if [[ ! -d "$src" ]]; then
    tar xzf "$bundle/llama_src.tar.gz" -C "$work"
fi

args=(
    -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF
    # Not -march=native: virtual machines here advertise AMX instructions they then fault on
    # (docs/toolchain.md). With every layer on the GPU the CPU flags only matter for quantisation.
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
)
if [[ $backend == cuda ]]; then
    args+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
elif [[ $backend != cpu ]]; then
    echo "backend must be cuda or cpu, got '$backend'" >&2
    exit 2
fi

cmake -S "$src/vendor/llama.cpp" -B "$build" "${args[@]}"  # cheap when already configured
if [[ $configure_only == --configure-only ]]; then
    exit 0
fi
start=$(date +%s)
cmake --build "$build" --target llama -j "$jobs"
echo "BUILD_SECONDS=$(($(date +%s) - start))"
ls -la "$build/bin"/*.so*
echo "export PYTHONPATH=$src\${PYTHONPATH:+:\$PYTHONPATH} LLAMA_CPP_LIB_PATH=$build/bin"
