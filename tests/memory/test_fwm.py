"""The Fast Weight Memory core: math, fast path == reference, cell semantics, learning."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memory.functional import tanh
from memory.fwm import (
    FWMCell,
    FWMConfig,
    fold,
    fwm_scan,
    fwm_scan_reference,
    fwm_step,
    low_rank_memory,
    make_key,
    settings_options,
)
from memory.rnn import lstm_step, lstm_with_resets
from training.regularization import weight_drop_

D64 = torch.float64
NAMES = ["state", "k1", "k2", "v", "beta", "n0", "e"]  # fwm_scan's differentiable inputs


def random_inputs(T, B, d, n_reads, key_mode="outer", state_norm=0.9, key_gain=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=D64)

    dk = d * d if key_mode == "outer" else 2 * d
    state = rnd(B, dk, d)
    state = state / state.flatten(1).norm(dim=1)[:, None, None] * state_norm
    tensors = [state, torch.tanh(rnd(T, B, d)) * key_gain, torch.tanh(rnd(T, B, d)) * key_gain,
               torch.tanh(rnd(T, B, d)), torch.sigmoid(rnd(T, B)), rnd(T, B, d),
               torch.tanh(rnd(T, B, n_reads, d))]
    return [x.requires_grad_() for x in tensors]


@pytest.mark.parametrize("dtype", [torch.float32, D64])
def test_tanh_through_sigmoid_equals_torch_tanh_with_its_gradient(dtype):
    x = torch.cat([torch.linspace(-30, 30, 20001, dtype=dtype),
                   torch.tensor([0.0, 1e-30, -1e-30, 1e4, -1e4, float("inf"), -float("inf")],
                                dtype=dtype)]).requires_grad_()
    ours, theirs = tanh(x), torch.tanh(x)
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(ours, theirs, rtol=0, atol=4 * eps)
    assert ours.abs().max() <= 1
    grad, = torch.autograd.grad(ours.sum(), x)
    torch.testing.assert_close(grad, 1 - theirs.detach().square(), rtol=0, atol=8 * eps)
    if dtype == torch.float64:  # the hand-written backward is itself differentiable
        points = torch.linspace(-3, 3, 13, dtype=dtype, requires_grad=True)
        assert torch.autograd.gradgradcheck(tanh, (points,))


def test_theorem_b1_update_replaces_old_association_by_convex_mix():
    d = 4
    k1 = F.normalize(torch.randn(d, dtype=D64), dim=0)
    k2 = F.normalize(torch.randn(d, dtype=D64), dim=0)
    key = make_key(k1, k2)  # unit norm: |k1 (x) k2| = |k1| |k2| = 1
    v_old = F.normalize(torch.randn(d, dtype=D64), dim=0) * 0.5
    v_new = F.normalize(torch.randn(d, dtype=D64), dim=0) * 0.5
    beta = 0.3
    state = torch.outer(key, v_old)[None]  # F_old = vec(k1 (x) k2) (x) v_old, norm 0.5
    z = torch.zeros(1, 1, d, dtype=D64)
    _, new = fwm_scan(state, k1[None, None], k2[None, None], v_new[None, None],
                      torch.tensor([[beta]], dtype=D64), z[0:1], z[:, :, None])
    expected = torch.outer(key, (1 - beta) * v_old + beta * v_new)
    torch.testing.assert_close(new[0], expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("key_gain", [0.3, 1.0], ids=["clip-inactive", "clip-active"])
def test_norm_at_most_one_after_every_write(key_gain):
    T, B, d = 12, 4, 5
    state, k1, k2, v, beta, n0, e = random_inputs(T, B, d, 1, state_norm=0.0, key_gain=key_gain)
    norms = []
    fw = state.detach()
    for t in range(T):
        _, fw = fwm_scan(fw, k1[t:t + 1], k2[t:t + 1], v[t:t + 1], beta[t:t + 1], n0[t:t + 1],
                         e[t:t + 1])
        norms.append(fw.flatten(1).norm(dim=1))
    norms = torch.stack(norms)
    assert (norms <= 1 + 1e-12).all()
    if key_gain == 1.0:
        assert (norms > 1 - 1e-9).any(), "the clip should have been active"
    else:
        assert (norms < 1 - 1e-3).all(), "the clip should never have been active"


CASES = {
    "B2-T5-d3-R1": dict(T=5, B=2, d=3, n_reads=1),
    "B3-T9-d4-R2": dict(T=9, B=3, d=4, n_reads=2),
    "B3-T9-d4-R3": dict(T=9, B=3, d=4, n_reads=3),
    "B2-T7-d4-R3-concat": dict(T=7, B=2, d=4, n_reads=3, key_mode="concat"),
    "B3-T8-d3-R3-noclip": dict(T=8, B=3, d=3, n_reads=3, key_gain=0.2, state_norm=0.1),
    "B2-T21-d3-R2": dict(T=21, B=2, d=3, n_reads=2),  # several chunks of every size below
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("masks", ["none", "reset", "read", "reset+read", "reset-all", "pad",
                                   "reset+pad"])
@pytest.mark.parametrize("chunk_size", [1, 4, 32])
def test_fast_scan_equals_reference_outputs_and_gradients(case, masks, chunk_size):
    case = dict(case)
    key_mode = case.pop("key_mode", "outer")
    T, B = case["T"], case["B"]
    inputs = random_inputs(**case, key_mode=key_mode)
    g = torch.Generator().manual_seed(1)
    reset = read_mask = None
    if "reset" in masks:
        reset = torch.zeros(T, B, dtype=torch.bool)
        reset[T // 2, 0] = reset[1, B - 1] = True
    if masks == "reset-all":  # every row resets at a chunk start: the chunk skips F_0
        reset = torch.zeros(T, B, dtype=torch.bool)
        reset[4] = True
    if "read" in masks:
        read_mask = torch.rand(T, B, generator=g) < 0.5
        read_mask[0] = True
    args = list(inputs)
    if "pad" in masks:  # padding steps do not write (beta = 0): the clip must leave F as it is
        pad = torch.rand(T, B, generator=g) < 0.3
        pad[0, 0] = pad[T - 1, B - 1] = True
        args[4] = inputs[4] * ~pad
    kwargs = dict(reset=reset, read_mask=read_mask, key_mode=key_mode, update_scale=0.7)
    fast = fwm_scan(*args, chunk_size=chunk_size, **kwargs)
    ref = fwm_scan_reference(*args, **kwargs)
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    weights = [torch.randn(x.shape, generator=g, dtype=D64) for x in ref]
    grads_fast = torch.autograd.grad(
        sum((w * y).sum() for w, y in zip(weights, fast, strict=True)), inputs,
        retain_graph=True)  # the padding's product is shared
    grads_ref = torch.autograd.grad(
        sum((w * y).sum() for w, y in zip(weights, ref, strict=True)), inputs)
    for name, a, b in zip(NAMES, grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=f"gradient of {name}")
    assert grads_ref[0].abs().sum() > 0, "the initial state must receive a gradient"


@pytest.mark.parametrize("case", ["B3-T8-d3-R3-noclip", "B2-T21-d3-R2", "B2-T7-d4-R3-concat"])
@pytest.mark.parametrize("chunk_size", [4, 32])
def test_fast_scan_in_float32_stays_close_to_the_float64_reference(case, chunk_size):
    """The fast scan in float32 (how it is trained) against the float64 reference: outputs
    within 1e-5 (absolute; they are of order 1), gradients within 2e-5 of (1 + their largest
    entry), which reaches about 70 here."""
    case = dict(CASES[case])
    key_mode = case.pop("key_mode", "outer")
    inputs = random_inputs(**case, key_mode=key_mode)
    reset = torch.zeros(case["T"], case["B"], dtype=torch.bool)
    reset[case["T"] // 2, 0] = True
    kwargs = dict(reset=reset, key_mode=key_mode, update_scale=0.7)
    ref = fwm_scan_reference(*inputs, **kwargs)
    inputs32 = [x.detach().float().requires_grad_() for x in inputs]
    fast = fwm_scan(*inputs32, chunk_size=chunk_size, **kwargs)
    for a, b in zip(fast, ref, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, rtol=0, atol=1e-5)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(x.shape, generator=g, dtype=D64) for x in ref]
    grads_ref = torch.autograd.grad(
        sum((w * y).sum() for w, y in zip(weights, ref, strict=True)), inputs)
    grads_fast = torch.autograd.grad(
        sum((w.float() * y).sum() for w, y in zip(weights, fast, strict=True)), inputs32)
    for name, a, b in zip(NAMES, grads_fast, grads_ref, strict=True):
        scale = 1 + float(b.abs().max())
        torch.testing.assert_close(a.double(), b, rtol=0, atol=2e-5 * scale,
                                   msg=f"gradient of {name}")


@pytest.mark.parametrize("key_mode", ["outer", "concat"])
@pytest.mark.parametrize("max_rank", [1, 3, 32])
@pytest.mark.parametrize("start", ["carried", "zero"])
def test_low_rank_steps_equal_reference_outputs_and_gradients(key_mode, max_rank, start):
    """fwm_step (acting, memory in low-rank form) over T steps == the reference over T, with a
    reset of one row, a reset of every row (the cache is dropped) and folds every max_rank."""
    T, B, d, n_reads = 9, 3, 4, 3
    inputs = random_inputs(T, B, d, n_reads, key_mode=key_mode)
    if start == "zero":
        inputs[0] = torch.zeros_like(inputs[0]).requires_grad_()
    reset = torch.zeros(T, B, dtype=torch.bool)
    reset[4, 1] = True
    reset[6] = True
    kwargs = dict(key_mode=key_mode, update_scale=0.7)
    ref = fwm_scan_reference(*inputs, reset=reset, **kwargs)
    state, k1, k2, v, beta, n0, e = inputs
    memory, reads = low_rank_memory(state), []
    for t in range(T):
        read, memory = fwm_step(memory, k1[t], k2[t], v[t], beta[t], n0[t], e[t], reset=reset[t],
                                max_rank=max_rank, **kwargs)
        reads.append(read)
    fast = (torch.stack(reads), fold(memory, key_mode))
    assert memory.k1.shape[1] == (T - 6) % max_rank  # cache dropped at the full reset, folded
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    torch.testing.assert_close(memory.norm_sq, ref[1].flatten(1).square().sum(1), rtol=0,
                               atol=1e-12)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(x.shape, generator=g, dtype=D64) for x in ref]
    grads_fast = torch.autograd.grad(
        sum((w * y).sum() for w, y in zip(weights, fast, strict=True)), inputs)
    grads_ref = torch.autograd.grad(
        sum((w * y).sum() for w, y in zip(weights, ref, strict=True)), inputs)
    for name, a, b in zip(NAMES, grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=f"gradient of {name}")


def test_low_rank_step_without_reads_writes_the_same_memory():
    """n0=None (no read wanted, as in fwm_scan's one-step chunks under a read mask): the same
    write as a step with reads, a zero read, and no use of e."""
    T, B, d = 4, 3, 4
    state, k1, k2, v, beta, n0, e = (x.detach() for x in random_inputs(T, B, d, 2))
    with_reads = without = low_rank_memory(state)
    for t in range(T):
        read, with_reads = fwm_step(with_reads, k1[t], k2[t], v[t], beta[t], n0[t], e[t],
                                    max_rank=3)
        no_read, without = fwm_step(without, k1[t], k2[t], v[t], beta[t], None,
                                    torch.full_like(e[t], float("nan")), max_rank=3)
        assert (no_read == 0).all() and (read != 0).any()
    for a, b in zip(with_reads, without, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_low_rank_step_never_touches_a_fresh_or_fully_reset_memory():
    """A zero memory that needs no gradient, or one reset in every row, is never read: a NaN
    base does not reach the outputs (it would if the step made a pass over it)."""
    T, B, d = 5, 2, 3
    state, k1, k2, v, beta, n0, e = (x.detach() for x in random_inputs(T, B, d, 2))
    memory = low_rank_memory(torch.zeros_like(state))
    assert (memory.scale == 0).all()
    poisoned = memory._replace(base=torch.full_like(state, float("nan")))
    read, _ = fwm_step(poisoned, k1[0], k2[0], v[0], beta[0], n0[0], e[0])
    assert torch.isfinite(read).all()
    memory = low_rank_memory(state)._replace(base=torch.full_like(state, float("nan")))
    read, _ = fwm_step(memory, k1[0], k2[0], v[0], beta[0], n0[0], e[0],
                       reset=torch.ones(B, dtype=torch.bool))
    assert torch.isfinite(read).all()


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_reset_of_every_row_at_the_start_gives_the_initial_state_a_zero_gradient(chunk_size):
    state, *rest = random_inputs(6, 3, 4, 2)
    reset = torch.zeros(6, 3, dtype=torch.bool)
    reset[0] = True
    reads, final = fwm_scan(state, *rest, reset=reset, chunk_size=chunk_size)
    # zero, or not in the graph at all (None, materialized as zeros here)
    (grad,) = torch.autograd.grad((reads.sum() + final.sum()), state, allow_unused=True,
                                  materialize_grads=True)
    assert (grad == 0).all()
    fresh = fwm_scan(torch.zeros_like(state), *rest, chunk_size=chunk_size)
    torch.testing.assert_close(reads, fresh[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(final, fresh[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 4, 32])
def test_no_state_is_the_zero_memory(chunk_size):
    """``state=None`` (never formed or read) gives what a zero F gives, gradients included,
    through the scan and through the cell; with no step there is no F_T to form."""
    state, *rest = random_inputs(6, 3, 4, 2)
    reads, final = fwm_scan(None, *rest, chunk_size=chunk_size)
    zero_reads, zero_final = fwm_scan(torch.zeros_like(state), *rest, chunk_size=chunk_size)
    torch.testing.assert_close(reads, zero_reads, rtol=0, atol=1e-12)
    torch.testing.assert_close(final, zero_final, rtol=0, atol=1e-12)
    weights = torch.randn_like(reads)
    for a, b in zip(torch.autograd.grad((weights * reads).sum() + final.sum(), rest),
                    torch.autograd.grad((weights * zero_reads).sum() + zero_final.sum(), rest),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="state=None"):
        fwm_scan(None, *(x[:0] for x in rest))

    torch.manual_seed(0)
    cell = FWMCell(cell_config(chunk_size=chunk_size)).double()
    x = torch.randn(7, 2, 6, dtype=D64)
    out, (h, c, fw) = cell(x)
    zero_out, (zero_h, zero_c, zero_fw) = cell(x, cell.initial_state(2, dtype=D64))
    for a, b in ((out, zero_out), (h, zero_h), (c, zero_c), (fw, zero_fw)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert fw.abs().sum() > 0  # the memory was written (not a vacuous comparison)


def test_read_mask_and_padding_leave_state_untouched():
    T, B, d = 6, 3, 4
    state, k1, k2, v, beta, n0, e = random_inputs(T, B, d, 3)
    beta = beta.detach().clone()
    beta[:, 1] = 0.0  # row 1 is padding all along: never writes
    read_mask = torch.zeros(T, B, dtype=torch.bool)
    read_mask[2, 0] = True
    with torch.no_grad():
        reads, final = fwm_scan(state, k1, k2, v, beta, n0, e, read_mask=read_mask)
        _, final_all_reads = fwm_scan(state, k1, k2, v, beta, n0, e)
    torch.testing.assert_close(final[1], state[1], rtol=0, atol=0)
    torch.testing.assert_close(final, final_all_reads, rtol=0, atol=0)  # reads never write
    assert (reads[~read_mask] == 0).all() and (reads[2, 0] != 0).any()


def cell_config(**kw):
    return FWMConfig(input_size=6, hidden_size=8, d_fwm=3, n_reads=2, **kw)


@pytest.mark.parametrize("kw", [{}, {"residual": False, "squash_first_read_key": False},
                                {"key_mode": "concat", "beta_bias": 1.0, "update_scale": 1 / 3},
                                settings_options("authors-rl", 3)],
                         ids=["paper", "catbabi-like", "concat-authors-write", "authors-rl"])
def test_cell_fast_equals_reference_and_steps_equal_sequence(kw):
    torch.manual_seed(0)
    cell = FWMCell(cell_config(**kw)).double()
    x = torch.randn(10, 3, 6, dtype=D64)
    reset = torch.zeros(10, 3, dtype=torch.bool)
    reset[4, 1] = True
    out, state = cell(x, reset=reset)
    out_ref, state_ref = cell(x, reset=reset, reference=True)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-10)
    for a, b in zip(state, state_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    # T single steps with the state carried (in low-rank form, folded every 3 steps here)
    # equal one T-long call, from a zero and from a carried state
    cell.config.chunk_size = 3
    for start in (None, cell(x[:4])[1]):
        out, state = cell(x, start, reset=reset)
        s, outs = start, []
        for t in range(10):
            o, s = cell.step(x[t], s, reset[t])
            outs.append(o)
        torch.testing.assert_close(torch.stack(outs), out, rtol=0, atol=1e-12)
        for a, b in zip(s.as_state(cell.config.key_mode), state, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        # the step state continues a sequence call like the plain state it stands for
        more = torch.randn(3, 3, 6, dtype=D64)
        torch.testing.assert_close(cell(more, s)[0], cell(more, state)[0], rtol=0, atol=1e-12)


def test_sequence_from_a_step_state_that_resets_everywhere_forms_no_memory(monkeypatch):
    """A rollout whose every row starts an episode at step 0 (the A2C update) runs from the
    acting state without folding its low-rank memory into F, and gives what the folded state
    gives; a row that does not reset still needs F, and gets it."""
    import memory.fwm.cell as cell_module

    torch.manual_seed(0)
    cell = FWMCell(cell_config()).double()
    x = torch.randn(6, 3, 6, dtype=D64)
    with torch.no_grad():  # as in acting
        _, state = cell.step(x[0], None, None)
        _, state = cell.step(x[1], state, None)  # a non-empty low-rank memory
    assert state.w.abs().sum() > 0
    folded = state.as_state(cell.config.key_mode)
    reset = torch.zeros(6, 3, dtype=torch.bool)
    reset[0] = True
    expected, final = cell(x, folded, reset=reset)
    folds = []
    monkeypatch.setattr(cell_module, "fold", lambda *a: folds.append(1) or fold(*a))
    out, final_from_step = cell(x, state, reset=reset)
    assert not folds
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    for a, b in zip(final_from_step, final, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    reset[0, 1] = False  # row 1 continues its episode: its memory is read
    expected, _ = cell(x, folded, reset=reset)
    out, _ = cell(x, state, reset=reset)
    assert folds
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def _projections(cell, x):
    with torch.no_grad():
        return cell._project(cell._lstm(x, cell.initial_state(x.shape[1], dtype=x.dtype),
                                         None)[0], None)


@pytest.mark.parametrize("option", ["squash_read_keys", "squash_first_read_key", "beta_bias",
                                    "update_scale", "init"])
def test_each_authors_option_changes_exactly_what_it_names(option):
    """Each option of the authors' settings, at its default, gives today's cell; at the
    authors' value it changes only the quantity it names (same seed, same inputs)."""
    authors = settings_options("authors-rl", 3)[option]
    default = FWMConfig.__dataclass_fields__[option].default
    torch.manual_seed(0)
    base = FWMCell(cell_config()).double()
    torch.manual_seed(0)
    same = FWMCell(cell_config(**{option: default})).double()
    torch.manual_seed(0)
    other = FWMCell(cell_config(**{option: authors})).double()
    x = torch.randn(7, 2, 6, dtype=D64)
    torch.testing.assert_close(same(x)[0], base(x)[0], rtol=0, atol=0)
    names = {"init": {"write_proj.weight", "read_proj.weight", "lstm.bias_ih_l0",
                      "lstm.bias_hh_l0"}}.get(option, set())
    for (name, a), b in zip(base.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b) != (name in names), name
    if option == "init":
        bound = (6 / (8 + 3)) ** 0.5
        assert other.write_proj.weight.abs().max() <= bound
        assert other.read_proj.weight.abs().max() <= bound
        forget = other.lstm.bias_ih_l0 + other.lstm.bias_hh_l0
        assert forget[8:16].eq(1).all() and forget[:8].eq(0).all() and forget[16:].eq(0).all()
        return
    k1, k2, v, beta, n0, e = _projections(base, x)
    o_k1, o_k2, o_v, o_beta, o_n0, o_e = _projections(other, x)
    for a, b in ((k1, o_k1), (k2, o_k2), (v, o_v)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    changed = {"squash_read_keys": (e, o_e.tanh()), "squash_first_read_key": (n0, o_n0.tanh()),
               "beta_bias": (torch.logit(beta) + 1, torch.logit(o_beta))}.get(option)
    if changed is not None:  # the named projection, and only it, differs as the option says
        torch.testing.assert_close(*changed, rtol=0, atol=1e-12)
        unchanged = [(beta, o_beta), (n0, o_n0), (e, o_e)]
        named = {"squash_read_keys": 2, "squash_first_read_key": 1, "beta_bias": 0}[option]
        for i, (a, b) in enumerate(unchanged):
            assert torch.equal(a, b) != (i == named), (option, i)
    else:  # update_scale: the projections are equal, the memory and so the output are not
        for a, b in ((beta, o_beta), (n0, o_n0), (e, o_e)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        fw, o_fw = base(x)[1].F, other(x)[1].F
        assert not torch.allclose(fw, o_fw)


def test_named_settings_are_the_options_they_list():
    assert settings_options("paper", 16) == {}
    assert settings_options("authors-write", 16) == {"beta_bias": 1.0, "update_scale": 1 / 16}
    assert settings_options("authors-catbabi", 32) == {
        "beta_bias": 1.0, "update_scale": 1 / 32, "squash_first_read_key": False,
        "init": "authors"}
    assert settings_options("authors-rl", 16)["squash_read_keys"] is False
    with pytest.raises(ValueError, match="authors-rl"):
        settings_options("authors", 16)
    with pytest.raises(ValueError, match="FWMConfig.init"):
        cell_config(init="xavier")


def test_lstm_step_equals_a_one_step_lstm_call_with_resets():
    """lstm_step (acting's LSTM step) is nn.LSTM over a one-step sequence, outputs and
    gradients, rows with reset starting from zeros; a module with forward pre-hooks (weight
    drop) runs them."""
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7).double()
    x, h, c = (torch.randn(4, n, dtype=D64) for n in (5, 7, 7))
    reset = torch.tensor([False, True, False, True])
    out, (h_ref, c_ref) = lstm_with_resets(lstm, x[None], h, c, reset[None])
    h_new, c_new = lstm_step(lstm, x, h, c, reset)
    torch.testing.assert_close(h_new, h_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_new, c_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_new, out[0], rtol=0, atol=1e-12)
    h_zero, _ = lstm_step(lstm, x[1:2], torch.zeros(1, 7, dtype=D64),
                          torch.zeros(1, 7, dtype=D64), None)
    torch.testing.assert_close(h_new[1:2], h_zero, rtol=0, atol=1e-12)  # reset: from zeros

    def gradients(step):  # of inputs, state and weights, through both outputs
        leaves = [t.clone().requires_grad_() for t in (x, h, c)]
        lstm.zero_grad()
        h_out, c_out = step(*leaves)
        (h_out.sin().sum() + c_out.cos().sum()).backward()
        return [t.grad for t in leaves] + [p.grad.clone() for p in lstm.parameters()]

    ours = gradients(lambda x_, h_, c_: lstm_step(lstm, x_, h_, c_, reset))
    ref = gradients(lambda x_, h_, c_: lstm_with_resets(lstm, x_[None], h_, c_, reset[None])[1])
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)

    dropped = weight_drop_(nn.LSTM(5, 7).double(), 0.5)  # a pre-hook draws a mask per call
    torch.manual_seed(1)
    h_hook, _ = lstm_step(dropped, x, h, c, None)
    torch.manual_seed(1)
    _, (h_call, _) = dropped(x[None], (h[None], c[None]))
    torch.testing.assert_close(h_hook, h_call[0], rtol=0, atol=0)


@pytest.mark.parametrize("chunk_size", [1, 4, 32])
def test_skipping_the_final_state_leaves_outputs_and_gradients_unchanged(chunk_size):
    """final_state=False (an update over a rollout) returns None for the state and the same
    outputs, with the same gradients for the parameters and the initial state."""
    torch.manual_seed(0)
    cell = FWMCell(cell_config(chunk_size=chunk_size)).double()
    x = torch.randn(9, 3, 6, dtype=D64)
    reset = torch.zeros(9, 3, dtype=torch.bool)
    reset[5, 1] = True
    start = cell(x[:3])[1]
    start = type(start)(*(s.detach().requires_grad_() for s in start))
    weights = torch.randn(9, 3, 8, dtype=D64)
    grads = []
    for final_state in (True, False):
        out, state = cell(x, start, reset, final_state=final_state)
        assert (state is None) == (not final_state)
        grads.append(torch.autograd.grad((weights * out).sum(), [*cell.parameters(), *start]))
        if final_state:
            kept = out
        else:
            torch.testing.assert_close(out, kept, rtol=0, atol=0)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert grads[0][-1].abs().sum() > 0  # F_0 gets a gradient (not a vacuous comparison)


def test_cell_reset_equals_fresh_start():
    torch.manual_seed(0)
    cell = FWMCell(cell_config()).double()
    x = torch.randn(8, 2, 6, dtype=D64)
    reset = torch.zeros(8, 2, dtype=torch.bool)
    reset[5] = True
    out, _ = cell(x, reset=reset)
    fresh, _ = cell(x[5:])
    torch.testing.assert_close(out[5:], fresh, rtol=0, atol=1e-12)


def test_cell_gradient_reaches_initial_state_and_is_cut_by_reset():
    torch.manual_seed(0)
    cell = FWMCell(cell_config()).double()
    x = torch.randn(6, 2, 6, dtype=D64)
    state = cell.initial_state(2, dtype=D64)
    state = type(state)(*(torch.randn_like(t).mul(0.1).requires_grad_() for t in state))
    reset = torch.zeros(6, 2, dtype=torch.bool)
    reset[3, 1] = True
    out, _ = cell(x, state, reset=reset)
    grads = torch.autograd.grad(out[-1].sum(), state)
    assert all(g[0].abs().sum() > 0 for g in grads), "row 0 must depend on its initial state"
    assert all(g[1].abs().sum() == 0 for g in grads), "row 1 was reset: no gradient"


def test_cell_bad_input():
    cell = FWMCell(cell_config())
    with pytest.raises(ValueError, match="x must be"):
        cell(torch.randn(4, 2, 5))
    with pytest.raises(ValueError, match="reset"):
        cell(torch.randn(4, 2, 6), reset=torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_mode"):
        FWMConfig(input_size=3, key_mode="sum")
    with pytest.raises(ValueError, match="d_fwm"):
        FWMConfig(input_size=3, d_fwm=0)
    with pytest.raises(ValueError, match="chunk_size"):
        FWMConfig(input_size=3, chunk_size=0)


def test_import_does_not_pull_in_stable_baselines3():
    code = "import sys, memory.fwm; assert 'stable_baselines3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cell_learns_associative_recall():
    """Write 3 key->value pairs (random symbols), then query one key: recall its value.

    A memoryless model is at chance (1/8); an LSTM-sized model without a working memory cannot
    do this in the budget. The FWM cell reaches high accuracy in a few seconds.
    """
    torch.manual_seed(0)
    n_sym, pairs, batch = 8, 3, 64
    query_token = 2 * n_sym  # keys are 0..7, values 8..15

    def make_batch():
        keys = torch.stack([torch.randperm(n_sym)[:pairs] for _ in range(batch)], 1)  # (P, B)
        values = torch.randint(n_sym, (pairs, batch)) + n_sym
        which = torch.randint(pairs, (batch,))
        seq = torch.stack([keys, values], 1).flatten(0, 1)  # (2P, B): k v k v k v
        tail = torch.stack([torch.full((batch,), query_token), keys[which, torch.arange(batch)]])
        return torch.cat([seq, tail]), values[which, torch.arange(batch)] - n_sym

    cfg = FWMConfig(input_size=32, hidden_size=32, d_fwm=8, n_reads=1, residual=True)
    embed, cell, head = torch.nn.Embedding(2 * n_sym + 1, 32), FWMCell(cfg), \
        torch.nn.Linear(32, n_sym)
    params = [*embed.parameters(), *cell.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    for _ in range(600):
        tokens, target = make_batch()
        out, _ = cell(embed(tokens))
        loss = F.cross_entropy(head(out[-1]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # over 8 batches: one batch of 64 put seed 1 at 0.78, 8 at 0.87
        acc = sum((head(cell(embed(tokens))[0][-1]).argmax(-1) == target).float().mean().item()
                  for tokens, target in (make_batch() for _ in range(8))) / 8
    assert acc > 0.8, f"associative recall accuracy {acc:.2f} (chance 0.125)"


@pytest.mark.parametrize("key_mode", ["outer", "concat"])
def test_cell_keys_are_the_queries_the_reads_use(key_mode):
    """``FWMCell.keys`` (figure 3): the write keys are vec(k1 (x) k2), the first query is built
    from n0 and e1, and each later query from the layer-normed previous read of the memory."""
    torch.manual_seed(0)
    cell = FWMCell(FWMConfig(input_size=5, hidden_size=7, d_fwm=3, n_reads=3,
                             key_mode=key_mode)).double()
    x = torch.randn(6, 2, 5, dtype=torch.float64)
    write_keys, queries = cell.keys(x)
    h_seq, _ = cell.lstm(x)
    k1, k2, _, _, n0, e = cell._project(h_seq, None)
    torch.testing.assert_close(write_keys, make_key(k1, k2, key_mode))
    torch.testing.assert_close(queries[:, :, 0], make_key(n0, e[:, :, 0], key_mode))
    _, state = cell(x)  # F after the last step's write: the memory the last reads query
    for b in range(2):
        n = n0[-1, b]
        for i in range(3):
            torch.testing.assert_close(queries[-1, b, i], make_key(n, e[-1, b, i], key_mode))
            n = F.layer_norm(queries[-1, b, i] @ state.F[b], (3,))
