"""MetroPOMDP on a torch device: the same dynamics as numpy, step for step; no host decision on
a device; bad device, dtype and action arguments named."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import metro_pomdp  # noqa: F401  (registers the envs)
from metro_pomdp import REGISTERED
from metro_pomdp.baselines import evaluate_policy_returns

N = 40
KEYS = ["agent", "reward_location", "graph_index", "reset_timer", "invalid_action",
        "reached_reward"]


def _assert_same(ours, theirs, what: str):
    """A numpy array and a tensor (or dicts of them) hold the same values and kinds of values."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), what
        for key in theirs:
            _assert_same(ours[key], theirs[key], f"{what}[{key!r}]")
        return
    assert isinstance(ours, torch.Tensor), what
    np.testing.assert_array_equal(ours.numpy(), theirs, err_msg=what)


def _variants():
    cases = [(env_id, {}) for env_id in REGISTERED]
    cases.append(("MetroPOMDP-v0", {"random_graph": True}))
    return [pytest.param(env_id, kwargs, id=env_id + ("-random" if kwargs else ""))
            for env_id, kwargs in cases]


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id,kwargs", _variants())
def test_torch_env_equals_numpy_env_step_for_step(env_id, kwargs, mode):
    """The torch env (which never takes numpy's host shortcuts) returns what the numpy env
    returns, over three episode ends, infos and final observations included."""
    numpy_env = gym.make_vec(env_id, num_envs=N, autoreset_mode=mode, **kwargs)
    torch_env = gym.make_vec(env_id, num_envs=N, autoreset_mode=mode, device="cpu",
                             dtype=torch.float64, **kwargs)
    obs_a, info_a = torch_env.reset(seed=5)
    obs_b, info_b = numpy_env.reset(seed=5)
    _assert_same(obs_a.float(), obs_b, "reset obs")  # float64, rounded once: numpy's
    _assert_same(info_a, info_b, "reset info")
    rng = np.random.default_rng(1)
    n_actions = numpy_env.single_action_space.n
    for step in range(95):  # three episode ends, every env's steps of every kind
        actions = rng.integers(n_actions, size=N)
        out_a = torch_env.step(torch.as_tensor(actions))
        out_b = numpy_env.step(actions)
        _assert_same(out_a[0].float(), out_b[0], f"obs at step {step}")
        for name, a, b in zip(("reward", "terminated", "truncated"), out_a[1:4], out_b[1:4]):
            _assert_same(a, b, f"{name} at step {step}")
        info_a, info_b = out_a[4], out_b[4]
        if mode == AutoresetMode.SAME_STEP and "final_obs" in info_b:
            # the torch env forms the final observation at every step (it does not ask which
            # envs ended); where one ended, it is numpy's
            ended = info_b["_final_obs"]
            _assert_same(info_a["_final_obs"], ended, f"_final_obs at step {step}")
            np.testing.assert_array_equal(info_a["final_obs"].float().numpy()[ended],
                                          info_b["final_obs"][ended])
            _assert_same(info_a["final_info"], info_b["final_info"], f"final_info at {step}")
        _assert_same({k: info_a[k] for k in KEYS}, {k: info_b[k] for k in KEYS},
                     f"info at step {step}")
    np.testing.assert_array_equal(torch_env.adjacency, numpy_env.adjacency)


def test_float32_outputs_are_numpy_s_rounded_once():
    numpy_env = gym.make_vec("MetroPOMDP-v0", num_envs=N, autoreset_mode="SameStep")
    torch_env = gym.make_vec("MetroPOMDP-v0", num_envs=N, autoreset_mode="SameStep",
                             device="cpu")
    torch_env.reset(seed=2)
    numpy_env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(3, size=N)
        obs_a, reward_a, *_ = torch_env.step(torch.as_tensor(actions))
        obs_b, reward_b, *_ = numpy_env.step(actions)
        assert obs_a.dtype == reward_a.dtype == torch.float32
        np.testing.assert_array_equal(obs_a.numpy(), obs_b)
        np.testing.assert_array_equal(reward_a.numpy(), reward_b.astype(np.float32))


def test_partial_resets_by_mask_equal_numpy_s():
    """DISABLED mode: a reset of some envs draws from their streams only."""
    numpy_env = gym.make_vec("MetroPOMDP-v0", num_envs=N, autoreset_mode="Disabled")
    torch_env = gym.make_vec("MetroPOMDP-v0", num_envs=N, autoreset_mode="Disabled",
                             device="cpu", dtype=torch.float64)
    torch_env.reset(seed=9)
    numpy_env.reset(seed=9)
    rng = np.random.default_rng(3)
    for step in range(70):
        actions = rng.integers(3, size=N)
        out_a, out_b = torch_env.step(torch.as_tensor(actions)), numpy_env.step(actions)
        _assert_same(out_a[0].float(), out_b[0], f"obs at step {step}")
        if step % 11 == 10:
            mask = rng.random(N) < 0.3
            obs_a, _ = torch_env.reset(options={"reset_mask": torch.as_tensor(mask)})
            obs_b, _ = numpy_env.reset(options={"reset_mask": mask})
            _assert_same(obs_a.float(), obs_b, f"obs after the reset at {step}")


def test_on_a_device_no_step_waits_for_the_device():
    """On the meta device every value is unknown: a step that asked for one (``bool()``,
    ``.item()``, ``.tolist()``, a numpy copy) would raise. Two episodes in both modes, with the
    random graphs of the agents' recipe."""
    for mode in ("NextStep", "SameStep"):
        envs = gym.make_vec("MetroPOMDP-v0", num_envs=N, autoreset_mode=mode, device="meta",
                            random_graph=True)
        obs, info = envs.reset(seed=0)
        actions = torch.zeros(N, dtype=torch.int64, device="meta")
        for _ in range(62):
            obs, reward, terminated, truncated, info = envs.step(actions)
        for x in (obs, reward, terminated, truncated, *info.values()):
            if isinstance(x, torch.Tensor):
                assert x.device.type == "meta"


def test_reference_policies_return_the_same_on_both_backends_with_their_own_seeds():
    """With generators of their own, the random and shortest-path policies' mean returns on the
    torch env agree with numpy's within their standard errors (4 of them, combined)."""
    for policy in ("random", "shortest_path"):
        a = evaluate_policy_returns(policy, "test", episodes=2, seed=0)
        b = evaluate_policy_returns(policy, "test", episodes=2, seed=1, device="cpu")
        se = np.hypot(a.std() / np.sqrt(a.size), b.std() / np.sqrt(b.size))
        assert abs(a.mean() - b.mean()) < 4 * se, (policy, a.mean(), b.mean(), se)
        assert not np.array_equal(a, b)  # the seeds did differ


@pytest.mark.parametrize("kwargs,match", [
    ({"device": "tpu0"}, "device must be None .* or a torch device"),
    ({"device": 3.5}, "device must be None"),
    ({"dtype": torch.float64}, "dtype=torch.float64 needs a torch device"),
    ({"device": "cpu", "dtype": torch.int64}, "dtype must be torch.float32 or torch.float64"),
    ({"device": "cpu", "dtype": np.float32}, "dtype must be torch.float32 or torch.float64"),
])
def test_bad_device_or_dtype_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make_vec("MetroPOMDP-v0", num_envs=4, **kwargs)


def test_cuda_without_cuda_is_refused_and_with_cuda_runs():
    if torch.cuda.is_available():
        envs = gym.make_vec("MetroPOMDP-v0", num_envs=4, device="cuda")
        obs, _ = envs.reset(seed=0)
        assert obs.device.type == "cuda"
    else:
        with pytest.raises(ValueError, match="sees no CUDA device"):
            gym.make_vec("MetroPOMDP-v0", num_envs=4, device="cuda")


def test_bad_actions_on_a_torch_env_are_named():
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=4, device="cpu")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 3\), got \[3, -1\] at env "
                                         r"indices \[1, 2\]"):
        envs.step(torch.tensor([0, 3, -1, 2]))
    with pytest.raises(ValueError, match="must be an integer tensor, got dtype torch.float32"):
        envs.step(torch.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(4,\), got \(3,\)"):
        envs.step(torch.zeros(3, dtype=torch.int64))
    # numpy actions are accepted and copied to the env's device
    obs, *_ = envs.step(np.array([0, 1, 2, 0]))
    assert isinstance(obs, torch.Tensor)
