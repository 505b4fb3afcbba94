"""The rollout on the policy's device (agents.rollout.RolloutStore) computes what SB3's numpy
RolloutBuffer computes, and A2C and PPO train to the same numbers as before it replaced that
buffer."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import Logger

from agents.a2c import RecurrentA2C
from agents.ppo import RecurrentPPO
from agents.rollout import RolloutStore


def test_the_store_computes_sb3_s_advantages_and_returns_bit_for_bit():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    act_space = spaces.Discrete(4)
    T, N = 7, 5
    sb3 = RolloutBuffer(T, obs_space, act_space, "cpu", gamma=0.97, gae_lambda=0.9, n_envs=N)
    ours = RolloutStore(T, obs_space, act_space, "cpu", gamma=0.97, gae_lambda=0.9, n_envs=N)
    rng = np.random.default_rng(0)
    for _ in range(T):
        obs = rng.standard_normal((N, 3)).astype(np.float32)
        action = torch.as_tensor(rng.integers(0, 4, N))
        reward = rng.standard_normal(N).astype(np.float32)
        start = rng.random(N) < 0.3
        value, log_prob = torch.randn(N, 1), torch.randn(N)
        sb3.add(obs, action.numpy().reshape(-1, 1), reward, start, value, log_prob)
        ours.add(obs, action, reward, start, value, log_prob)
    last, dones = torch.randn(N, 1), rng.random(N) < 0.5
    sb3.compute_returns_and_advantage(last, dones)
    ours.compute_returns_and_advantage(last, dones)
    for name in ("observations", "actions", "rewards", "episode_starts", "values", "log_probs",
                 "advantages", "returns"):
        np.testing.assert_array_equal(getattr(ours, name).numpy(),
                                      getattr(sb3, name).reshape(getattr(ours, name).shape),
                                      err_msg=name)


# Parameters and logged losses after two updates on a fixed seed, recorded at 09f472c with
# SB3's numpy RolloutBuffer (AMD EPYC, torch 2.13.0+cpu, one thread); the tolerance allows for
# another CPU's summation order, far below what a change of the algorithm moves. PPO's policy
# gradient loss is a mean of terms that nearly cancel (about 1e-4), so it gets an absolute
# bound: 1e-8, about four times the difference between a CPU with AVX-512 and one without.
BEFORE = {
    ("a2c", "fwm"): {"params_sum": -1.817496872467018, "params_sq": 80.94071262751189,
                     "train/policy_loss": 15.468541145324707,
                     "train/value_loss": 360.7408752441406},
    ("a2c", "delta-net"): {"params_sum": -11.276075280135046, "params_sq": 46.96466489289078,
                           "train/policy_loss": 13.992621421813965,
                           "train/value_loss": 236.39154052734375},
    ("ppo", "fwm"): {"params_sum": -1.905921580402719, "params_sq": 80.90685004140127,
                     "train/value_loss": 187.4487164815267,
                     "train/policy_gradient_loss": -0.00017764270342013333},
    ("ppo-kl", "lstm"): {"params_sum": -8.39888678535499, "params_sq": 69.21808724765798,
                         "train/value_loss": 209.18269687228732,
                         "train/policy_gradient_loss": -0.0001358403090744926},
}
SETTINGS = {"a2c": (RecurrentA2C, {}),
            "ppo": (RecurrentPPO, {"batch_size": 60, "n_epochs": 2, "n_steps": 30}),
            "ppo-kl": (RecurrentPPO, {"batch_size": 60, "n_epochs": 3, "n_steps": 30,
                                      "target_kl": 0.001, "normalize_advantage": True})}


@pytest.mark.parametrize("env", ["numpy", "torch"])
@pytest.mark.parametrize("algo, core", list(BEFORE), ids=lambda x: str(x))
def test_a2c_and_ppo_train_to_the_numbers_of_before_the_store(algo, core, env):
    """Also with the env as torch tensors (``device="cpu"``): the rollout path of a device env
    (actions given as tensors, episode statistics and time-limit bootstrapping on the device)
    trains to the same numbers."""
    cls, kwargs = SETTINGS[algo]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if env == "torch":
        env = gym.make_vec("MetroPOMDP-v0", num_envs=6, autoreset_mode="SameStep", device="cpu")
    else:
        env = "MetroPOMDP-v0"
    try:
        policy = {"core": core, "hidden_size": 8, "net_arch": [16]}
        if core == "fwm":
            policy["d_fwm"] = 4
        model = cls("RecurrentActorCriticPolicy", env, n_envs=6,
                    policy_kwargs=policy, seed=3, ent_coef=0.1, gae_lambda=0.95, **kwargs)
        logged = {}
        model.set_logger(Logger(None, []))
        model.logger.record = lambda key, value, exclude=None: logged.__setitem__(key, value)
        model.learn(2 * 6 * 30)
    finally:
        torch.set_num_threads(threads)
    params = torch.cat([p.detach().flatten() for p in model.policy.parameters()]).double()
    got = {"params_sum": float(params.sum()), "params_sq": float(params.square().sum()),
           **{k: float(v) for k, v in logged.items()}}
    for key, value in BEFORE[(algo, core)].items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-8), key
    assert len(model.ep_info_buffer) == 12  # an episode per env and update, as VecMonitor has
