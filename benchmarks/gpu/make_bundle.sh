#!/usr/bin/env bash
# Make the small bundle that travels to the GPU machine (which has no package registry):
# a trimmed llama-cpp-python source tree (the sdist is 76 MB, over the 64 MiB carry limit)
# and the pure-Python wheels that machine lacks.
#
# usage: benchmarks/gpu/make_bundle.sh [SDIST.tar.gz|-] [OUT_DIR=artifacts/gpu]
#   SDIST omitted or '-': pip downloads llama-cpp-python 0.3.36's sdist (76 MB) from PyPI.
# Needs pip with access to PyPI (here, not on the device). Output is git-ignored (/artifacts/).
set -euo pipefail

sdist=${1:--}
out=${2:-artifacts/gpu}
mkdir -p "$out/wheels"
out=$(cd "$out" && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $sdist == - ]]; then
    python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp/sdist" llama-cpp-python==0.3.36
    sdist=$(echo "$tmp"/sdist/llama_cpp_python-*.tar.gz)
fi
mkdir "$tmp/src"
tar xzf "$sdist" -C "$tmp/src"
src=$(echo "$tmp"/src/llama_cpp_python-*)
name=$(basename "$src")
lc="$src/vendor/llama.cpp"

# llama.cpp: keep only what the `llama` library target (ggml-base, ggml-cpu, ggml-cuda) needs.
rm -rf "$lc"/{models,docs,tests,examples,tools,benches,media,gguf-py,conversion,scripts,pocs,app,ci,grammars,requirements,skills}
rm -rf "$lc"/common  # only needed with LLAMA_BUILD_COMMON=ON, which build_llama.sh turns off
for b in blas cann et hexagon hip metal musa opencl openvino rpc sycl virtgpu vulkan webgpu zdnn zendnn; do
    rm -rf "$lc/ggml/src/ggml-$b"
done
# llama-cpp-python's own extras (docs, examples, docker, tests) are not needed to import the package.
rm -rf "$src"/{docs,examples,docker,tests,.git,.github} "$lc"/.git "$lc"/.github

tar czf "$out/llama_src.tar.gz" -C "$tmp/src" "$name"
echo "$name" >"$out/llama_src.name"

# Pure-Python wheels missing on the device (diskcache for llama_cpp, gguf to write the model file).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d "$out/wheels" diskcache==5.6.3 gguf==0.19.0

du -sh "$out/llama_src.tar.gz" "$out/wheels"
