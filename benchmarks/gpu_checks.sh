#!/usr/bin/env bash
# The checks that need a GPU, in one short run: the CUDA tests (tests/agents/test_cuda.py: the
# FWM scan on CUDA against the float64 CPU reference, gradients included; every memory core
# on CUDA without a host sync), then the speed benchmarks of the FWM cell, of every core
# (bench_cores.py) and of RecurrentA2C (FWM-32-16, LSTM-32 and LSTM-4096) with --device cuda.
# Logs go to OUT_DIR (default runs/gpu, which git ignores).
#
# Usage: bash benchmarks/gpu_checks.sh [OUT_DIR]
#
# It needs the project's dependencies (pip install -e '.[dev]' with a CUDA build of torch).
# A folder .whl/ of wheels, if present, is installed first (for a machine without a package
# index: fetch them elsewhere with `pip download --no-deps -d .whl gymnasium
# stable-baselines3 ...`).
set -euo pipefail
case "${1:-}" in
    -h|--help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    -*)
        echo "gpu_checks.sh: unknown option $1 (see --help)" >&2
        exit 2 ;;
esac
cd "$(dirname "$0")/.."
out="${1:-runs/gpu}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
'gpu_checks.sh: no CUDA device visible to torch ' + torch.__version__)"

python3 -m pytest -q -rs -p no:cacheprovider tests/agents/test_cuda.py 2>&1 | tee "$out/tests.txt"
python3 benchmarks/bench_fwm.py --device cuda --skip-reference 2>&1 | tee "$out/bench_fwm.txt"
python3 benchmarks/bench_cores.py --device cuda --rounds 3 --json "$out/bench_cores.json" 2>&1 \
    | tee "$out/bench_cores.txt"
python3 benchmarks/bench_a2c.py --device cuda --lstm-sizes 32 4096 --updates 10 2>&1 \
    | tee "$out/bench_a2c.txt"
