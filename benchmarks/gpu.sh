#!/usr/bin/env bash
# The GPU work, scripted in advance for a machine where nothing can be fetched and one command
# runs at most 10 minutes:  benchmarks/gpu.sh STAGE [RESULTS_DIR]
#   tests  the whole test suite with the CuPy backend added to every backend-parametrized test
#   ops    op benchmark, CuPy vs PyTorch CUDA (strict FP32), benchmark size and 4x
#   step   U-Net training steps, CuPy vs PyTorch CUDA, benchmark size and 4x
#   train  a short `minitorch-seg train --backend cupy` run, beside the CPU backend's images/s
# Each stage stops itself within 8 minutes and writes what it has into RESULTS_DIR as it goes.
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: benchmarks/gpu.sh tests|ops|step|train [RESULTS_DIR]}
results=${2:-benchmarks/results/gpu}
mkdir -p "$results"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python -m pip install -q --no-deps --no-build-isolation -e . >/dev/null || exit 1
python -m minitorch_seg doctor | tee "$results/doctor.txt"
limit=470
case "$stage" in
  tests)
    timeout "$limit" python -m pytest tests -q -p no:cacheprovider --durations=20 -m "not lessons" \
      --junitxml="$results/tests.xml" 2>&1 | tee "$results/tests.log" ;;
  ops|step)
    timeout "$limit" python benchmarks/bench_gpu.py "$stage" --out "$results" 2>&1 | tee "$results/$stage.log" ;;
  train)
    timeout "$limit" python -m minitorch_seg train --backend cupy --epochs 2 --out "$results/run-cupy" 2>&1 \
      | tr '\r' '\n' | grep -v '^epoch [0-9]*/' | tee "$results/train.log" ;;
  *)
    echo "unknown stage $stage; expected tests, ops, step or train" >&2; exit 2 ;;
esac
