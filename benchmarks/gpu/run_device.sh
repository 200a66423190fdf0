#!/usr/bin/env bash
# The whole GPU benchmark in one resumable command: build llama.cpp (CUDA) for llama-cpp-python,
# write a Mistral-7B-shaped f16 GGUF (random weights) while it builds, quantise to Q4_K_M and Q4_0
# (timed), then time prompt/generation with flash attention on and off, and dualrec's serving path.
#
# Run from the repository root, after benchmarks/gpu/make_bundle.sh made artifacts/gpu/:
#   OUT=/some/dir benchmarks/gpu/run_device.sh
# Every step skips work already done in $WORK, so a second call on the same machine resumes;
# no step starts after BUDGET seconds (default 540) so that results are written before a time limit.
# Local CPU rehearsal with a tiny model:
#   BACKEND=cpu SHAPE="--n-layer 2 --n-embd 256 --n-head 8 --n-head-kv 2 --n-ff 512" N_PROMPT=64 N_GEN=16 \
#   WORK=runs/gpu-local OUT=runs/gpu-local/out benchmarks/gpu/run_device.sh
set -uo pipefail

t0=$(date +%s)
BUDGET=${BUDGET:-540}
deadline=$((t0 + BUDGET))
BACKEND=${BACKEND:-cuda}
SHAPE=${SHAPE:-}
N_PROMPT=${N_PROMPT:-512}
N_GEN=${N_GEN:-128}
REPS=${REPS:-3}
JOBS=${JOBS:-$(nproc)}
BUNDLE=${BUNDLE:-artifacts/gpu}
WORK=${WORK:-runs/gpu-bench}
OUT=${OUT:-$WORK/out}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK/models" "$OUT"
WORK=$(cd "$WORK" && pwd)
R="$WORK/results.json"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PATH="$PATH:/usr/local/cuda/bin"
py=python3
bench() { $py "$here/bench.py" "$@" --results "$R" --mirror "$OUT/results.json" --deadline "$deadline"; }
elapsed() { echo "[$(($(date +%s) - t0)) s]"; }

echo "== environment $(elapsed)"
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU")
echo "gpu: $gpu"
echo "cpus: $(nproc); python: $($py -V 2>&1); nvcc: $(nvcc --version 2>/dev/null | tail -1)"
$py -c 'import numpy, jinja2, typing_extensions; print("numpy", numpy.__version__, "jinja2", jinja2.__version__)' \
    || echo "MISSING: one of numpy, jinja2, typing_extensions"
df -h "$WORK" | tail -1

if [[ ! -f "$WORK/site/.done" ]]; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
        "$BUNDLE"/wheels/*.whl && touch "$WORK/site/.done" || { echo "FAILED: wheel install"; exit 1; }
fi
src="$WORK/$(cat "$BUNDLE/llama_src.name")"
export PYTHONPATH="$WORK/site:$src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export LLAMA_CPP_LIB_PATH="$WORK/build-$BACKEND/bin"

bench record environment "gpu=$gpu" "cpus=$(nproc)" "python=$($py -V 2>&1)" "backend=$BACKEND" \
    "nvcc=$(nvcc --version 2>/dev/null | tail -1)" "llama_cpp_python=$(cat "$BUNDLE/llama_src.name")" \
    "command=BACKEND=$BACKEND SHAPE='$SHAPE' N_PROMPT=$N_PROMPT N_GEN=$N_GEN REPS=$REPS benchmarks/gpu/run_device.sh"

# The f16 model is written while llama.cpp compiles (one core and the disk against the compiler's 16).
f16="$WORK/models/model-f16.gguf"
model_pid=
if [[ ! -f "$f16.json" ]]; then
    echo "== writing the f16 model in the background $(elapsed)"
    # shellcheck disable=SC2086  # SHAPE is a list of arguments
    $py "$here/make_model.py" "$f16" $SHAPE >"$OUT/make_model.log" 2>&1 &
    model_pid=$!
fi

echo "== build ($BACKEND, $JOBS jobs) $(elapsed)"
if [[ ! -f "$LLAMA_CPP_LIB_PATH/libllama.so" ]]; then
    bstart=$(date +%s)
    if ! "$here/build_llama.sh" "$BUNDLE" "$WORK" "$BACKEND" "$JOBS" >"$OUT/build.log" 2>&1; then
        echo "FAILED: build; last lines of build.log:"
        tail -40 "$OUT/build.log"
        exit 1
    fi
    bench record environment "build_seconds=$(($(date +%s) - bstart))"
    grep -m1 -i "CMAKE_CUDA_ARCHITECTURES\|CUDA compiler identification" "$OUT/build.log"
fi
echo "built $(elapsed)"
$py -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "gpu offload:", llama_cpp.llama_supports_gpu_offload())'

if [[ -n $model_pid ]]; then
    wait "$model_pid" || { echo "FAILED: make_model"; cat "$OUT/make_model.log"; exit 1; }
fi
[[ -f "$OUT/make_model.log" ]] && cat "$OUT/make_model.log"
bench record model "f16=$f16.json"

echo "== quantise $(elapsed)"
bench quantize "$f16" --types Q4_K_M,Q4_0 --out-dir "$WORK/models" --min-seconds 100 2>"$OUT/quantize.log" \
    || { echo "FAILED: quantize"; tail -20 "$OUT/quantize.log"; }

echo "== speed $(elapsed)"
bench speed --model "Q4_K_M=$WORK/models/model-Q4_K_M.gguf" --model "Q4_0=$WORK/models/model-Q4_0.gguf" \
    --flash-attn on,off --n-prompt "$N_PROMPT" --n-gen "$N_GEN" --reps "$REPS" --min-seconds 30

echo "== dualrec serving path $(elapsed)"
if [[ -f "$WORK/models/model-Q4_K_M.gguf" ]]; then
    bench serving --model "$WORK/models/model-Q4_K_M.gguf" --quant Q4_K_M --n-gen "$N_GEN" --reps "$REPS" \
        --min-seconds 25 || echo "FAILED: serving path"
fi

$py "$here/bench.py" report "$R" | tee "$OUT/results.md"
echo "== done $(elapsed)"
