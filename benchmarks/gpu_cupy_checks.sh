#!/usr/bin/env bash
# The GPU backends' checks and benchmark in one device call (issue 7), with every log written under $OUT.
#
#   On the development machine, once (fills the git-ignored .whl/ with wheels the GPU machine cannot download):
#       bash benchmarks/gpu_cupy_checks.sh fetch [python versions, default "3.10 3.11 3.12 3.13"]
#   On the GPU machine (carry .whl), all at once or in parts if one call would exceed its time limit:
#       bash benchmarks/gpu_cupy_checks.sh [all | tests | bench | quick]
#
# First, always: the real stack is asserted (benchmarks/gpu_stack_check.py, log $OUT/gpu_stack.txt): CuPy on a
# GPU, the cuDNN frontend with its library loaded and cuDNN's fprop, dgrad and wgrad graphs executed and
# counted by a training step (so nothing below can pass on the im2col route), and NCCL available and summing.
# A failure there fails the script, and the rest still runs for its logs. The stack is what
# `pip install "minivgg[cupy]"` installs (cupy-cuda13x[ctk], nvidia-cudnn-cu13, nvidia-cudnn-frontend,
# nvidia-nccl-cu13; CUDA 13 needs an R580+ driver); a GPU machine that reaches no package index has to have
# them, except the frontend, whose wheel "fetch" downloads for carrying.
# "tests" runs the backend grid (tests/backends/test_backends.py: every op of cupy and numba, float64 and float32, against
# the loops; the small-net step; the tests marked gpu: VGG-16's layer shapes against the reference) and the
# recorded-step tests (tests/training/test_graph_step.py: a CUDA graph replay against the eager step), and the
# feeding tests (tests/backends/test_feeding_on_gpu.py: the fused SGD kernel and the device preprocessing bit for
# bit against the reference, the copy stream under real concurrency), after installing minivgg and the carried
# wheels;
# "bench" runs benchmarks/bench_gpu.py for cupy and numba beside PyTorch; "quick" runs the benchmark at tiny
# shapes (a smoke test of the script). Logs: $OUT/environment.txt, $OUT/gpu_stack.txt, $OUT/gpu_stack.json,
# $OUT/pytest_gpu.log, $OUT/junit_gpu.xml, $OUT/bench_gpu.log and $OUT/bench_gpu.json.
set -uo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
PYTHON="${PYTHON:-python3}"

if [[ "$part" == "fetch" ]]; then
    shift
    versions="${*:-3.10 3.11 3.12 3.13}"
    mkdir -p .whl
    for version in $versions; do
        "$PYTHON" -m pip download --quiet --no-deps --dest .whl --only-binary=:all: --python-version "$version" \
            --platform manylinux_2_28_x86_64 "nvidia-cudnn-frontend>=1.10" \
            || echo "no wheels for Python $version"
    done
    ls -l .whl
    exit 0
fi

OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"

{
    date -u
    nvidia-smi || echo "nvidia-smi failed"
    "$PYTHON" --version
    "$PYTHON" -m pip list 2>/dev/null | grep -i -E "^(cupy|numba|numpy|torch|nvidia-cudnn|nvidia-nccl|cuda-)" || true
} > "$OUT/environment.txt" 2>&1

# The GPU machine reaches no package index: install only what was carried, and minivgg itself without deps.
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install --quiet --no-deps --no-index --find-links .whl nvidia-cudnn-frontend \
        >> "$OUT/environment.txt" 2>&1 || echo "installing the carried wheels failed" >> "$OUT/environment.txt"
fi
"$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e . >> "$OUT/environment.txt" 2>&1 \
    || echo "installing minivgg failed" >> "$OUT/environment.txt"
"$PYTHON" -c "import minivgg.backends.cupy as b; print(b.frontend_status())" >> "$OUT/environment.txt" 2>&1
"$PYTHON" -c "import minivgg.backends.cupy as b; print('cupy overrides', b.OVERRIDES, sorted(b.capabilities))" \
    >> "$OUT/environment.txt" 2>&1

status=0
"$PYTHON" benchmarks/gpu_stack_check.py --json "$OUT/gpu_stack.json" > "$OUT/gpu_stack.txt" 2>&1 || status=1
cat "$OUT/gpu_stack.txt"
if [[ "$part" == "all" || "$part" == "tests" ]]; then
    timeout 420 "$PYTHON" -m pytest -p no:cacheprovider -ra --durations=20 -k "cupy or numba or gpu" \
        --junitxml="$OUT/junit_gpu.xml" tests/backends/test_backends.py tests/training/test_graph_step.py \
        tests/backends/test_backend_registry.py tests/backends/test_feeding_on_gpu.py \
        > "$OUT/pytest_gpu.log" 2>&1 || status=1
    tail -n 40 "$OUT/pytest_gpu.log"
fi
if [[ "$part" == "all" || "$part" == "bench" ]]; then
    timeout 480 "$PYTHON" benchmarks/bench_gpu.py --backends cupy,numba --json "$OUT/bench_gpu.json" --verbose \
        > "$OUT/bench_gpu.log" 2>&1 || status=1
    tail -n 60 "$OUT/bench_gpu.log"
fi
if [[ "$part" == "quick" ]]; then
    timeout 300 "$PYTHON" benchmarks/bench_gpu.py --quick --steps 2 --warmup 1 --backends cupy,numba --verbose \
        --json "$OUT/bench_gpu_quick.json" > "$OUT/bench_gpu_quick.log" 2>&1 || status=1
    tail -n 60 "$OUT/bench_gpu_quick.log"
fi
exit $status
