"""The CUDA paths against the float64 CPU reference and against the CPU. They run where
``torch.cuda.is_available()`` and skip elsewhere (the skip reason is printed with
``pytest -rs``)."""

import pytest
import torch

from memory.fwm import fwm_scan, fwm_scan_reference

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


def _same_a2c_update_on(device: str, core: str) -> None:
    """One RecurrentA2C update on ``device`` from the rollout the CPU model collected (the
    devices' random streams differ, so the rollout is shared, not drawn twice) equals the CPU
    update: the loss gradients within 1e-5 of their largest entry, the parameters after the
    Adam step within 1e-5 (its first step is lr g / (|g| + eps) with lr 1e-3, eps 1e-4: a
    float32 difference of 1e-7 in a small gradient entry moves it by up to 1e-6)."""

    from stable_baselines3.common.logger import configure

    from agents.a2c import RecurrentA2C
    from agents.vec_env import make_metro_vec_env

    def build(on):
        return RecurrentA2C("RecurrentActorCriticPolicy", make_metro_vec_env("MetroPOMDP-v0",
                            num_envs=16), n_steps=30, seed=0, device=on, ent_coef=0.03,
                            policy_kwargs={"core": core, "core_kwargs": {"zero_init_output":
                                           False}} if core == "fwm" else {"core": core})

    cpu, moved = build("cpu"), build(device)
    moved.policy.load_state_dict(cpu.policy.state_dict())
    cpu.learn(16 * 30)  # one rollout, one update
    moved.rollout_buffer = cpu.rollout_buffer.to(device)
    moved._rollout_state = tuple(s.to(device) for s in cpu._rollout_state)
    moved._current_progress_remaining = cpu._current_progress_remaining
    moved.set_logger(configure(None, []))
    moved.train()
    assert moved._n_updates == cpu._n_updates == 1
    for (name, p), q in zip(cpu.policy.named_parameters(), moved.policy.parameters(),
                            strict=True):
        if p.grad is not None:
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=0, atol=1e-5 * scale + 1e-12,
                                       msg=f"gradient of {name}")
        torch.testing.assert_close(q.detach().cpu(), p.detach(), rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("core", ["fwm", "lstm"])
def test_a2c_update_on_cuda_equals_cpu(core):
    _same_a2c_update_on("cuda", core)


@pytest.mark.parametrize("name", ["fwm", "lstm", "gru", "linear-transformer", "delta-net",
                                  "gated-delta-net"])
def test_every_core_on_cuda_makes_no_host_sync_and_equals_the_cpu(name):
    """Acting steps and a sequence with resets on CUDA under ``set_sync_debug_mode("error")``
    (any host sync raises), against the same core on the CPU, in float64."""
    import memory

    torch.manual_seed(0)
    options = {"d_fwm": 4} if name == "fwm" else {}
    cpu = memory.make_core(name, 5, 8, **options).double()
    gpu = memory.make_core(name, 5, 8, **options).double().cuda()
    gpu.load_state_dict(cpu.state_dict())
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    seq = torch.randn(40, 4, 5, generator=g, dtype=torch.float64)
    resets = torch.zeros(3, 4, dtype=torch.bool)
    resets[0] = True
    reset_seq = torch.zeros(40, 4, dtype=torch.bool)
    reset_seq[0], reset_seq[9, 2] = True, True

    def run(core, device):
        s, outs = None, []
        for x, r in zip(xs.to(device), resets.to(device)):
            o, s = core.step(x, s, r)
            outs.append(o)
        out, _ = core(seq.to(device), s, reset_seq.to(device))
        return torch.stack(outs), out

    expected = run(cpu, "cpu")
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = run(gpu, "cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=1e-9)
