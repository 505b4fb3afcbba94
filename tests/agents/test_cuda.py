"""The CUDA paths against the float64 CPU reference. They run where ``torch.cuda.is_available()``
and skip elsewhere (the skip reason is printed with ``pytest -rs``)."""

import pytest
import torch

from agents.fwm import fwm_scan, fwm_scan_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine")


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-9), (torch.float32, 1e-4)],
                         ids=["float64", "float32"])
def test_fwm_scan_on_cuda_equals_the_reference(dtype, atol):
    """Resets, padding (beta 0) and a carried memory; float64 gradients too."""
    g = torch.Generator().manual_seed(0)
    T, B, d, R = 45, 3, 4, 3

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    state = rnd(B, d * d, d)
    state = state / state.flatten(1).norm(dim=1)[:, None, None] * 0.9
    writes = torch.rand(T, B, generator=g) > 0.2
    inputs = [state, rnd(T, B, d).tanh(), rnd(T, B, d).tanh(), rnd(T, B, d).tanh(),
              torch.sigmoid(rnd(T, B)), rnd(T, B, d), rnd(T, B, R, d).tanh()]
    reset = torch.zeros(T, B, dtype=torch.bool)
    reset[7, 0] = reset[33] = True
    cpu = [x.clone().requires_grad_() for x in inputs]
    gpu = [x.to("cuda", dtype).requires_grad_() for x in inputs]
    ref = fwm_scan_reference(*cpu[:4], cpu[4] * writes, *cpu[5:], reset=reset, update_scale=0.7)
    out = fwm_scan(*gpu[:4], gpu[4] * writes.cuda(), *gpu[5:], reset=reset.cuda(),
                   update_scale=0.7)
    assert len(out) == len(ref)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a.cpu().double(), b, rtol=0, atol=atol)
    if dtype == torch.float64:
        weights = [torch.randn(x.shape, generator=g, dtype=torch.float64) for x in ref]

        def loss(ys, device):
            return sum((w.to(device) * y).sum() for w, y in zip(weights, ys, strict=True))

        grads_ref = torch.autograd.grad(loss(ref, "cpu"), cpu)
        grads_gpu = torch.autograd.grad(loss(out, "cuda"), gpu)
        for name, a, b in zip(["state", "k1", "k2", "v", "beta", "n0", "e"], grads_gpu,
                              grads_ref, strict=True):
            torch.testing.assert_close(a.cpu(), b, rtol=0, atol=atol, msg=f"gradient of {name}")


def _same_forward_on(device: str, model: torch.nn.Module, x: torch.Tensor, logits) -> None:
    """``logits(model, x)`` on ``device`` equals it on the CPU (float32; 1e-4 absolute)."""
    model = model.eval()
    with torch.no_grad():
        cpu = logits(model, x)
        moved = logits(model.to(device), x.to(device)).cpu()
    assert cpu.shape == moved.shape
    torch.testing.assert_close(moved, cpu, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["fwm", "lstm"])
def test_catbabi_models_on_cuda_equal_cpu(name):
    from qa.models import FWMModel, LSTMModel

    torch.manual_seed(0)
    model = (FWMModel(vocab_size=30, embedding_size=16, hidden_size=16, d_fwm=4)
             if name == "fwm" else LSTMModel(vocab_size=30, embedding_size=16, hidden_size=16,
                                             n_layers=2))
    x = torch.randint(1, 30, (40, 3))
    _same_forward_on("cuda", model, x, lambda m, t: m(t)[0])


@pytest.mark.parametrize("memory", ["fwm", "none"])
def test_language_models_on_cuda_equal_cpu(memory):
    from lm.model import LanguageModel, LMConfig

    torch.manual_seed(0)
    model = LanguageModel(LMConfig(30, memory=memory, embedding_size=12, hidden_size=20,
                                   n_layers=2, d_fwm=4, n_reads=2))
    x = torch.randint(0, 30, (25, 3))
    _same_forward_on("cuda", model, x, lambda m, t: m(t).logits)
