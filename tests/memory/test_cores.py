"""The memory cores: the fast-weight rules' fast forms equal their plain-loop float64
references, every core's step equals its forward, resets empty a row, the registry builds every
core and checkpoints load their states, and a user's core runs wherever a registered one does."""

import pytest
import torch
import torch.nn.functional as F

import memory
from memory.delta.chunk import chunk_fast_weights
from memory.delta.naive import (
    delta_rule_reference,
    gated_delta_rule_reference,
    sum_rule_reference,
)
from memory.delta.step import fast_weight_step

D64 = torch.float64
RULES = ["sum", "delta", "gated-delta"]
NEW_CORES = ["linear-transformer", "delta-net", "gated-delta-net"]


def rule_inputs(rule, T=23, B=3, H=2, dk=6, dv=4, seed=0, reset_p=0.15):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(T, B, H, dk, generator=g, dtype=D64)
    k = F.normalize(torch.randn(T, B, H, dk, generator=g, dtype=D64), dim=-1)
    v = torch.randn(T, B, H, dv, generator=g, dtype=D64)
    beta = torch.rand(T, B, H, generator=g, dtype=D64)
    log_alpha = -torch.rand(T, B, H, generator=g, dtype=D64) * 0.5
    state = torch.randn(B, H, dv, dk, generator=g, dtype=D64)
    reset = torch.rand(T, B, generator=g) < reset_p
    reset[5, 0] = True  # at least one reset inside the sequence
    inputs = {"q": q, "k": k, "v": v, "state": state}
    if rule != "sum":
        inputs["beta"] = beta
    if rule == "gated-delta":
        inputs["log_alpha"] = log_alpha
    return inputs, reset


def reference(rule, inputs, reset):
    fn = {"sum": sum_rule_reference, "delta": delta_rule_reference,
          "gated-delta": gated_delta_rule_reference}[rule]
    return fn(**inputs, reset=reset)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("chunk_size", [1, 5, 32])
def test_the_chunk_form_equals_the_reference_in_outputs_and_gradients(rule, chunk_size):
    """From a carried state, with resets inside the sequence, for chunks shorter than, across
    and longer than the sequence's pieces: outputs, final state and the gradients of every
    input (the carried state's included) equal the plain loop's to 1e-10."""
    inputs, reset = rule_inputs(rule)
    weights = [torch.randn_like(t) for t in reference(rule, inputs, reset)]

    def grads(fn):
        leaves = {name: t.clone().requires_grad_() for name, t in inputs.items()}
        out, state = fn(leaves)
        loss = (out * weights[0]).sum() + (state * weights[1]).sum()
        loss.backward()
        return (out, state), {name: t.grad for name, t in leaves.items()}

    (out_ref, s_ref), g_ref = grads(lambda x: reference(rule, x, reset))
    (out, s), g = grads(lambda x: chunk_fast_weights(**x, reset=reset, chunk_size=chunk_size))
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(s, s_ref, rtol=0, atol=1e-10)
    for name in g_ref:
        torch.testing.assert_close(g[name], g_ref[name], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("rule", RULES)
def test_the_one_step_form_equals_the_reference(rule):
    inputs, reset = rule_inputs(rule)
    out_ref, s_ref = reference(rule, inputs, reset)
    S, outs = inputs["state"], []
    for t in range(inputs["q"].shape[0]):
        out, S = fast_weight_step(S, inputs["q"][t], inputs["k"][t], inputs["v"][t],
                                  inputs.get("beta", [None] * 99)[t],
                                  inputs.get("log_alpha", [None] * 99)[t], reset[t])
        outs.append(out)
    torch.testing.assert_close(torch.stack(outs), out_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(S, s_ref, rtol=0, atol=1e-12)


def test_the_sum_rule_is_causal_linear_attention():
    """An independent reading of the linear transformer (ICML 2021, eq. 4-5): without resets
    and from an empty memory, ``y_t = sum_{j<=t} v_j (phi(k_j) . phi(q_t))``."""
    inputs, _ = rule_inputs("sum")
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    out, _ = sum_rule_reference(q, k, v)
    scores = torch.einsum("tbhd,sbhd->bhts", q, k).tril()  # [B, H, T, T], s <= t
    expected = torch.einsum("bhts,sbhe->tbhe", scores, v)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


def test_the_rules_write_what_their_papers_say_for_a_unit_key():
    """The delta rule's point (ICML 2021, section 4.2): with beta = 1 and a unit key, the
    memory afterwards returns exactly the new value for that key, whatever it held before;
    the sum rule returns the old value plus the new; the gated rule without a write decays the
    memory by alpha."""
    g = torch.Generator().manual_seed(1)
    S = torch.randn(1, 1, 3, 4, generator=g, dtype=D64)
    k = F.normalize(torch.randn(1, 1, 4, generator=g, dtype=D64), dim=-1)
    v = torch.randn(1, 1, 3, generator=g, dtype=D64)
    one = torch.ones(1, 1, dtype=D64)
    read, _ = fast_weight_step(S, k, k, v, beta=one)
    torch.testing.assert_close(read, v, rtol=0, atol=1e-12)
    read, _ = fast_weight_step(S, k, k, v)
    torch.testing.assert_close(read, (S @ k[..., None])[..., 0] + v, rtol=0, atol=1e-12)
    # Gated DeltaNet's decay (ICLR 2025, eq. 10) without a write: alpha S
    log_alpha = torch.full((1, 1), -0.3, dtype=D64)
    read, _ = fast_weight_step(S, k, k, v, beta=torch.zeros(1, 1, dtype=D64),
                               log_alpha=log_alpha)
    expected = torch.exp(log_alpha)[..., None] * (S @ k[..., None])[..., 0]
    torch.testing.assert_close(read, expected, rtol=0, atol=1e-12)


ALL_CORES = list(memory.core_names())


def core(name, input_size=5, hidden_size=8):
    torch.manual_seed(0)
    options = {"d_fwm": 4} if name == "fwm" else {}
    return memory.make_core(name, input_size, hidden_size, **options).double()


@pytest.mark.parametrize("name", ALL_CORES)
def test_step_t_times_equals_forward_and_a_reset_row_equals_a_fresh_state(name):
    c = core(name)
    T, B = 9, 3
    x = torch.randn(T, B, 5, dtype=D64)
    reset = torch.zeros(T, B, dtype=torch.bool)
    reset[4, 1] = True
    state = c.initial_state(B, dtype=D64)
    _, state = c(torch.randn(4, B, 5, dtype=D64), state)  # a carried, non-empty state
    out, final = c(x, state, reset)
    s, steps = state, []
    for t in range(T):
        o, s = c.step(x[t], s, reset[t])
        steps.append(o)
    torch.testing.assert_close(torch.stack(steps), out, rtol=0, atol=1e-10)
    # row 1 from step 4 on is what a fresh state gives on x[4:]
    fresh, _ = c(x[4:, 1:2], None)
    torch.testing.assert_close(out[4:, 1:2], fresh, rtol=0, atol=1e-10)
    assert out.shape == (T, B, c.output_size)
    assert isinstance(c, memory.MemoryCore)


def test_every_core_is_registered_with_its_state_types_and_checkpoints_load_them(tmp_path):
    from training.atomic import torch_load_checkpoint, torch_save_atomic

    assert set(NEW_CORES) <= set(ALL_CORES)
    for name in ALL_CORES:
        c = core(name)
        state = c.initial_state(2, dtype=D64)
        assert type(state) in memory.core_spec(name).state_types
        torch_save_atomic({"state": state}, tmp_path / "s.pt")
        loaded = torch_load_checkpoint(tmp_path / "s.pt")["state"]
        assert type(loaded) is type(state)
    with pytest.raises(ValueError, match="no memory core named 'deltanet'.*delta-net"):
        memory.make_core("deltanet", 3, 4)


class TinyCore(torch.nn.Module):
    """A user's core: an Elman RNN written in ten lines, with the interface and nothing more."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = torch.nn.RNNCell(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size, device=None, dtype=None):
        w = self.cell.weight_hh
        return (torch.zeros(batch_size, self.output_size, device=device or w.device,
                            dtype=dtype or w.dtype),)

    def forward(self, x, state=None, reset=None, final_state=True):
        s = state or self.initial_state(x.shape[1], x.device, x.dtype)
        outs = []
        for t in range(x.shape[0]):
            out, s = self.step(x[t], s, None if reset is None else reset[t])
            outs.append(out)
        return torch.stack(outs), s if final_state else None

    def step(self, x, state=None, reset=None):
        h = (state or self.initial_state(x.shape[0], x.device, x.dtype))[0]
        if reset is not None:
            h = h * (~reset).to(h.dtype)[:, None]
        h = self.cell(x, h)
        return h, (h,)

    def state_from_tuple(self, tensors):
        return tuple(tensors)


def test_a_user_core_runs_an_rl_update_a_catbabi_step_and_an_lm_step():
    from agents.a2c import RecurrentA2C
    from lm.model import LanguageModel, LMConfig
    from qa.models import CoreModel

    model = RecurrentA2C("RecurrentActorCriticPolicy", "MetroPOMDP-v0", n_envs=4,
                         policy_kwargs={"core": TinyCore, "hidden_size": 6}, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(120)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))

    qa = CoreModel(12, TinyCore, embedding_size=5, hidden_size=6)
    logits, state = qa(torch.randint(0, 12, (7, 2)))
    logits.sum().backward()
    assert logits.shape == (7, 2, 12) and qa.core.cell.weight_hh.grad is not None

    # the language model names its last layer's core (its config is saved with checkpoints):
    # a user's core is registered once, then used by name
    with pytest.raises(ValueError, match="LMConfig.memory"):
        LMConfig(20, memory="tiny-elman")
    memory.register_core(memory.CoreSpec("tiny-elman", TinyCore, ()))
    lm = LanguageModel(LMConfig(20, embedding_size=6, hidden_size=8, n_layers=2,
                                memory="tiny-elman"))
    out = lm(torch.randint(0, 20, (7, 2)))
    out.logits.sum().backward()
    assert out.logits.shape == (7, 2, 20)
    assert lm.layers[-1].cell.weight_hh.grad is not None


def test_a_core_without_the_interface_is_named():
    class Half(torch.nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.output_size = hidden_size

    with pytest.raises(TypeError, match="without initial_state, step, state_from_tuple"):
        memory.make_core(Half, 3, 4)


def test_size_for_budget_matches_a_parameter_count():
    budget = memory.parameter_count(memory.make_core("lstm", 17, 32))
    assert memory.size_for_budget("lstm", 17, budget) == 32
    hidden = memory.size_for_budget("delta-net", 17, budget)
    count = memory.parameter_count(memory.make_core("delta-net", 17, hidden))
    assert abs(count - budget) / budget < 0.05


@pytest.mark.parametrize("name", ALL_CORES)
def test_a_policy_with_each_core_saves_loads_and_acts_identically(name, tmp_path):
    """The registry round trip: a policy built by core name trains, saves, loads and then
    acts as before, its recurrent state carried through SB3's predict."""
    import numpy as np

    from agents.a2c import RecurrentA2C
    from agents.vec_env import make_vec_env

    kwargs = {"core": name, "hidden_size": 8} | ({"d_fwm": 4} if name == "fwm" else {})
    model = RecurrentA2C("RecurrentActorCriticPolicy", "MetroPOMDP-v0", n_envs=4,
                         policy_kwargs=kwargs, seed=0)
    model.learn(120)
    model.save(tmp_path / "agent.zip")
    loaded = RecurrentA2C.load(tmp_path / "agent.zip", device="cpu")
    env = make_vec_env("MetroPOMDP-Test-v0", 4)
    obs = env.reset()
    states = [None, None]
    starts = np.ones(4, dtype=bool)
    for _ in range(8):
        (a1, states[0]), (a2, states[1]) = (
            m.predict(obs, state=s, episode_start=starts, deterministic=True)
            for m, s in zip((model, loaded), states))
        np.testing.assert_array_equal(a1, a2)
        for x, y in zip(states[0], states[1]):
            np.testing.assert_array_equal(x, y)
        obs, _, done, _ = env.step(a1)
        starts = done


def test_the_package_is_a_foundation():
    """``memory`` imports torch and nothing of agents, qa, lm, training or SB3."""
    import subprocess
    import sys

    code = ("import sys, memory\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('agents', 'qa', 'lm', 'training', 'stable_baselines3', 'gymnasium')]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _run(c, steps_x, seq_x, reset_steps, reset_seq, requires_grad=True):
    """Three acting steps, then a sequence with resets from that state; a loss's gradient."""
    s, outs = None, []
    for x, r in zip(steps_x, reset_steps):
        o, s = c.step(x, s, r)
        outs.append(o)
    out, final = c(seq_x, s, reset_seq)
    return torch.stack(outs), out, final


@pytest.mark.parametrize("name", ALL_CORES)
def test_no_core_needs_the_host_on_a_device(name):
    """On the meta device (tensors without data: any ``.item()``, ``bool()``, ``.tolist()`` or
    data-dependent shape raises, and so does mixing in a CPU tensor) every core acts, runs a
    sequence with resets and backpropagates: on a GPU the same code makes no host sync and
    creates nothing on the CPU. A shortcut that asks the host breaks this test."""
    c = core(name).float().to("meta")
    meta = {"device": "meta"}
    steps_x = torch.zeros(3, 4, 5, **meta)
    reset_steps = torch.zeros(3, 4, dtype=torch.bool, **meta)
    seq_x = torch.zeros(40, 4, 5, **meta)  # more than a chunk
    reset_seq = torch.zeros(40, 4, dtype=torch.bool, **meta)
    acted, out, final = _run(c, steps_x, seq_x, reset_steps, reset_seq)
    out.sum().backward()
    assert out.device.type == "meta" and all(t.device.type == "meta" for t in final)


@pytest.mark.parametrize("name", ALL_CORES)
def test_the_device_path_computes_what_the_cpu_shortcuts_compute(name):
    """The masked path the cores take on a device equals the CPU's host-decided shortcuts, with
    resets of some rows, of every row, and none, in outputs and gradients."""
    from memory.functional import device_path

    c = core(name)
    g = torch.Generator().manual_seed(3)
    steps_x = torch.randn(3, 4, 5, generator=g, dtype=D64)
    reset_steps = torch.tensor([[True] * 4, [False, True, False, False], [False] * 4])
    seq_x = torch.randn(40, 4, 5, generator=g, dtype=D64)
    reset_seq = torch.zeros(40, 4, dtype=torch.bool)
    reset_seq[0] = True  # every row at step 0, as an A2C update's rollout
    reset_seq[7, 2] = reset_seq[33, 0] = True

    def run():
        c.zero_grad()
        acted, out, final = _run(c, steps_x, seq_x, reset_steps, reset_seq)
        (out.square().sum() + acted.sum()).backward()
        return [acted, out, *final], [p.grad.clone() for p in c.parameters()]

    cpu = run()
    with device_path():
        device = run()
    for a, b in zip(cpu[0] + cpu[1], device[0] + device[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
