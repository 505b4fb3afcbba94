#!/usr/bin/env bash
# The checks that need a GPU, as one short run for a lent GPU machine (the project's device
# tool): the FWM scan on CUDA against the float64 CPU reference, then the speed benchmarks of
# the FWM cell and of RecurrentA2C (FWM-32-16, LSTM-32 and LSTM-4096). Logs go to
# ${OUT:-runs/gpu}. Nothing here runs in CI, which has no GPU.
#
# The device machine has PyTorch, numpy, networkx, matplotlib and tqdm, but not gymnasium or
# stable-baselines3. Fetch their pure-Python wheels here first; the script installs what it
# finds in .whl:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl \
#       gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2
#
# then run `bash scripts/gpu_checks.sh` there with `.whl` carried along.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

python3 - <<'EOF' 2>&1 | tee "$out/correctness.txt"
"""fwm_scan on CUDA equals the plain-loop reference on the CPU (float64: outputs and gradients
to 1e-9; float32: outputs to 1e-4), with resets, padding and a carried memory."""
import torch
from agents.fwm import fwm_scan, fwm_scan_reference

assert torch.cuda.is_available(), "no CUDA device"
print(torch.cuda.get_device_name(), "torch", torch.__version__)
g = torch.Generator().manual_seed(0)
T, B, d, R = 45, 3, 4, 3
rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
state = rnd(B, d * d, d)
state = state / state.flatten(1).norm(dim=1)[:, None, None] * 0.9
writes = torch.rand(T, B, generator=g) > 0.2  # padding elsewhere: beta * 0, as in use
inputs = [state, rnd(T, B, d).tanh(), rnd(T, B, d).tanh(), rnd(T, B, d).tanh(),
          torch.sigmoid(rnd(T, B)), rnd(T, B, d), rnd(T, B, R, d).tanh()]
reset = torch.zeros(T, B, dtype=torch.bool)
reset[7, 0] = reset[33] = True
kw = dict(update_scale=0.7)
for dtype, atol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
    cpu = [x.clone().requires_grad_() for x in inputs]
    gpu = [x.to("cuda", dtype).requires_grad_() for x in inputs]
    ref = fwm_scan_reference(*cpu[:4], cpu[4] * writes, *cpu[5:], reset=reset, **kw)
    out = fwm_scan(*gpu[:4], gpu[4] * writes.cuda(), *gpu[5:], reset=reset.cuda(), **kw)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a.cpu().double(), b, rtol=0, atol=atol)
    if dtype == torch.float64:
        weights = [torch.randn(x.shape, generator=g, dtype=torch.float64) for x in ref]
        loss = lambda ys, dev: sum((w.to(dev) * y).sum() for w, y in zip(weights, ys))
        grads_ref = torch.autograd.grad(loss(ref, "cpu"), cpu)
        grads_gpu = torch.autograd.grad(loss(out, "cuda"), gpu)
        for name, a, b in zip(["state", "k1", "k2", "v", "beta", "n0", "e"], grads_gpu,
                              grads_ref):
            torch.testing.assert_close(a.cpu(), b, rtol=0, atol=atol, msg=f"gradient of {name}")
    print(f"fwm_scan on CUDA, {dtype}: equal to the reference (atol {atol})")
EOF

python3 scripts/bench_fwm.py --device cuda --skip-reference 2>&1 | tee "$out/bench_fwm.txt"
python3 scripts/bench_a2c.py --device cuda --lstm-sizes 32 4096 --updates 10 2>&1 \
    | tee "$out/bench_a2c.txt"
