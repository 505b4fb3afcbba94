#!/usr/bin/env bash
# The checks that need a GPU, in one run of at most 8 minutes:
#  1. the CUDA tests: the FWM scan against the float64 CPU reference, every memory core
#     without a host sync (tests/agents/test_cuda.py); a rollout and an update of A2C and PPO
#     with every core, env and policy on CUDA, under torch.cuda.set_sync_debug_mode("error")
#     (tests/agents/test_device_rollout.py); a catbAbI and an LM training step likewise
#     (tests/test_device_training_steps.py); the torch env on CUDA (test_torch_env.py);
#  2. env steps/s of the torch env on CUDA against the numpy env at 600, 6,000 and 60,000 envs;
#  3. FWM-32-16 A2C training env-steps/s with the env on CUDA against the env on the CPU;
#  4. tokens/s and env-steps/s of every memory core (bench_cores.py);
#  5. the paper-setting LSTM-512 agent's speed per update, in the minutes left.
# Logs go to OUT_DIR (default runs/gpu, which git ignores); OUT_DIR/summary.txt holds the
# tables. A step that fails or runs past its time is named there and the next step runs; the
# script then exits non-zero.
#
# Usage: bash benchmarks/gpu_checks.sh [OUT_DIR]
# (GPU_CHECKS_DEVICE=cpu runs the same steps on the CPU, to try the script without a GPU.)
#
# It needs the project's dependencies (pip install -e '.[dev]' with a CUDA build of torch).
# A folder .whl/ of wheels, if present, is installed first (for a machine without a package
# index: fetch them elsewhere with `pip download --no-deps -d .whl gymnasium
# stable-baselines3 ...`).
set -euo pipefail
case "${1:-}" in
    -h|--help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
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
device="${GPU_CHECKS_DEVICE:-cuda}"
if [[ "$device" == cuda* ]]; then
    python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
'gpu_checks.sh: no CUDA device visible to torch ' + torch.__version__)"
fi

start=$SECONDS
budget=${GPU_CHECKS_SECONDS:-480}
failed=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT_DIR/NAME.txt
    local name=$1 limit=$2; shift 2
    echo "== $name (at most ${limit} s)" | tee -a "$out/summary.txt"
    if ! timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"; then
        echo "== $name FAILED (exit ${PIPESTATUS[0]}; 124: past its time)" \
            | tee -a "$out/summary.txt"
        failed+=("$name")
    fi
}
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0)
if torch.cuda.is_available() else 'no CUDA device', '- running on $device')" \
    | tee "$out/summary.txt"
step tests 210 python3 -m pytest -q -rs -p no:cacheprovider tests/agents/test_cuda.py \
    tests/agents/test_device_rollout.py tests/test_device_training_steps.py \
    tests/metro_pomdp/test_torch_env.py
tail -n 3 "$out/tests.txt" >> "$out/summary.txt"
step bench_env 60 python3 benchmarks/bench_env.py --steps 1000 --sync-steps 10 \
    --device "$device" --device-envs 600 6000 60000
grep -A 6 "random graphs" "$out/bench_env.txt" >> "$out/summary.txt" || true
step bench_a2c_env 90 python3 benchmarks/bench_a2c.py --device "$device" --lstm-sizes \
    --net-arch 64 64 --env-on-device --updates 10
tail -n 4 "$out/bench_a2c_env.txt" >> "$out/summary.txt"
step bench_cores 90 python3 benchmarks/bench_cores.py --device "$device" --rounds 2 \
    --json "$out/bench_cores.json"
tail -n 12 "$out/bench_cores.txt" >> "$out/summary.txt"
left=$(( budget - (SECONDS - start) ))
if (( left > 30 )); then
    step bench_lstm512 "$left" python3 benchmarks/bench_a2c.py --device "$device" --lstm-sizes 512 \
        --net-arch 64 64 --env-on-device --updates 5
    tail -n 6 "$out/bench_lstm512.txt" >> "$out/summary.txt"
else
    echo "== bench_lstm512 skipped: ${left} s left of ${budget}" | tee -a "$out/summary.txt"
fi
echo "== done in $(( SECONDS - start )) s; failed: ${failed[*]:-none}" | tee -a "$out/summary.txt"
(( ${#failed[@]} == 0 ))
