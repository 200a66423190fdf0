#!/usr/bin/env bash
# Install llama-cpp-python into the given Python, built for this machine's accelerator.
#
# PyPI ships only the source package, so pip compiles llama.cpp (4-6 minutes on 2 cores). The
# wheel is cached per (version, CMAKE_ARGS): pip's own cache ignores CMAKE_ARGS and would silently
# reuse a build made with other flags, so pip runs with --no-cache-dir and we keep our own cache.
#
# Usage: scripts/install_llama_cpp.sh PYTHON [VERSION]   (CMAKE_ARGS from the environment)
set -euo pipefail
python=${1:?usage: install_llama_cpp.sh PYTHON [VERSION]}
version=${2:-0.3.36}

if [ -z "${CMAKE_ARGS+x}" ]; then
  case "$(uname -s)-$(uname -m)" in
    Darwin-arm64) CMAKE_ARGS="-DGGML_METAL=on" ;;
    # Portable x86-64 flags: the native default (-march=native) crashes on machines that advertise
    # instructions they fault on (seen: AMX on virtual machines). Set CMAKE_ARGS yourself for CUDA.
    Linux-x86_64) CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" ;;
    *) CMAKE_ARGS="" ;;
  esac
fi
export CMAKE_ARGS

if "$python" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.__version__ == '$version' else 1)" 2>/dev/null \
   && [ "$(cat "$("$python" -c 'import sys; print(sys.prefix)')/.llama_cmake_args" 2>/dev/null)" = "$CMAKE_ARGS" ]; then
  echo "llama-cpp-python $version already installed with CMAKE_ARGS='$CMAKE_ARGS'"
  exit 0
fi

key=$(printf '%s|%s|%s' "$version" "$CMAKE_ARGS" "$("$python" -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
cache=${DUALREC_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dualrec/wheels}/$key
if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $version (CMAKE_ARGS='$CMAKE_ARGS'); this takes several minutes..."
  mkdir -p "$cache"
  "$python" -m pip wheel --no-deps --no-cache-dir -w "$cache" "llama-cpp-python==$version"
fi
"$python" -m pip install --no-deps --force-reinstall "$cache"/llama_cpp_python-*.whl
"$python" -m pip install "diskcache>=5.6" "jinja2>=2.11" "typing-extensions>=4.5" "numpy>=1.20"
printf '%s' "$CMAKE_ARGS" > "$("$python" -c 'import sys; print(sys.prefix)')/.llama_cmake_args"
