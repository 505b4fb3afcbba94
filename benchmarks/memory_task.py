"""A standard memory task outside MetroPOMDP: CartPole with its velocities masked, trained with
sb3-contrib's ``RecurrentPPO`` and with our ``RecurrentPPO`` and ``RecurrentA2C`` over the FWM,
LSTM and GRU cores, in one process.

Example::

    python benchmarks/memory_task.py --seeds 0 1 2 --out runs/cartpole_novel.json

The observation keeps the cart position and the pole angle and drops both velocities, so a
policy has to infer them from what it has seen: a memoryless policy cannot balance the pole
for long. This is sb3-contrib's own benchmark of ``RecurrentPPO`` (the RL Zoo's
``CartPoleNoVel-v1``), and every agent uses the RL Zoo's tuned ``ppo_lstm`` settings for it:
8 envs, 32-step rollouts, observations normalised by ``VecNormalize`` (rewards not), gamma
0.98, GAE 0.8, learning rate 1e-3 decayed linearly to 0, no entropy bonus, Adam eps 1e-5;
a core of 64 units (the FWM: LSTM 64 and a 16x16x16 fast weight memory) under 64-unit ReLU
actor and critic layers, without orthogonal initialisation. PPO: 20 epochs over the rollout as
one minibatch, clip range 0.2 decayed linearly. ``RecurrentA2C`` takes one gradient step per
rollout, so it gets SB3's ``A2C`` defaults for its rollouts and step (5-step rollouts, GAE 1,
learning rate 7e-4, constant) with the same discount, networks and envs, and
``--a2c-timesteps`` (default 5x as many env steps).

Each agent is then evaluated for ``--eval-episodes`` episodes with greedy actions on fresh
envs that use the training run's observation statistics; the result is the mean episode
return (500 is the most a 500-step episode can give) and the training speed in env steps per
second. sb3-contrib's policy has separate actor and critic LSTMs (its zoo setting); ours share
one core.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from agents.a2c import RecurrentA2C
from agents.ppo import RecurrentPPO
from training.cli import HelpFormatter, add_machine_options, apply_machine_options
from training.validation import check_positive_int

AGENTS = ("contrib-ppo-lstm", "ppo-lstm", "ppo-gru", "ppo-fwm", "a2c-lstm", "a2c-gru", "a2c-fwm",
          # the FWM's successors (memory.delta), by their registered names
          "ppo-linear-transformer", "ppo-delta-net", "ppo-gated-delta-net")
#: what runs when --agents is not given (the successors are asked for by name)
DEFAULT_AGENTS = AGENTS[:7]
N_ENVS, N_STEPS, HIDDEN = 8, 32, 64  # envs, PPO's rollout length, the cores' width


class MaskVelocity(gym.ObservationWrapper):
    """CartPole's observation without the cart velocity and the pole's angular velocity."""

    KEEP = np.array([0, 2])  # cart position, pole angle

    def __init__(self, env: gym.Env):
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Box(box.low[self.KEEP], box.high[self.KEEP],
                                                dtype=box.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.KEEP]


def masked_cartpole() -> gym.Env:
    return MaskVelocity(gym.make("CartPole-v1"))


def linear(start: float):
    """SB3's schedule convention: the value at ``progress_remaining`` (1 at the start, 0 at the
    end)."""
    return lambda progress_remaining: start * progress_remaining


def make_agent(key: str, env, seed: int, device: str):
    """The agent named ``key`` on ``env``, with the shared settings of the module docstring."""
    common = dict(gamma=0.98, ent_coef=0.0, seed=seed, device=device)
    ppo = dict(n_steps=N_STEPS, gae_lambda=0.8, learning_rate=linear(1e-3),
               batch_size=N_STEPS * N_ENVS, n_epochs=20, clip_range=linear(0.2))
    heads = dict(net_arch=dict(pi=[64], vf=[64]), activation_fn=nn.ReLU, ortho_init=False,
                 optimizer_kwargs={"eps": 1e-5})
    algorithm, core = key.split("-", 1)
    if algorithm == "contrib":
        from sb3_contrib import RecurrentPPO as ContribRecurrentPPO
        return ContribRecurrentPPO("MlpLstmPolicy", env, **common, **ppo, policy_kwargs=dict(
            lstm_hidden_size=HIDDEN, enable_critic_lstm=True, **heads))
    core = core.removeprefix("ppo-")
    policy_kwargs = dict(core=core, hidden_size=HIDDEN, **heads)
    if algorithm == "ppo":
        return RecurrentPPO("RecurrentActorCriticPolicy", env, **common, **ppo,
                            policy_kwargs=policy_kwargs)
    return RecurrentA2C("RecurrentActorCriticPolicy", env, **common, n_steps=5, gae_lambda=1.0,
                        learning_rate=7e-4, policy_kwargs=policy_kwargs)


def run(key: str, seed: int, timesteps: int, eval_episodes: int, device: str) -> dict:
    """Train one agent for ``timesteps`` env steps and evaluate it greedily."""
    env = VecNormalize(make_vec_env(masked_cartpole, n_envs=N_ENVS, seed=seed),
                       norm_obs=True, norm_reward=False)
    model = make_agent(key, env, seed, device)
    start = time.perf_counter()
    model.learn(timesteps)
    wall = time.perf_counter() - start
    eval_env = VecNormalize(make_vec_env(masked_cartpole, n_envs=1, seed=seed + 10_000),
                            norm_obs=True, norm_reward=False, training=False)
    eval_env.obs_rms = env.obs_rms
    rewards, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes,
                                 deterministic=True, return_episode_rewards=True)
    return {"agent": key, "seed": seed, "timesteps": model.num_timesteps,
            "wall_s": round(wall, 1), "env_steps_per_s": round(model.num_timesteps / wall, 1),
            "parameters": sum(p.numel() for p in model.policy.parameters()),
            "eval_reward_mean": float(np.mean(rewards)), "eval_reward_std": float(np.std(rewards))}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--agents", nargs="+", default=list(DEFAULT_AGENTS), choices=AGENTS,
                   metavar="AGENT", help=f"which agents to train, in this order: {AGENTS}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of each agent")
    p.add_argument("--timesteps", type=int, default=100_000,
                   help="env steps per PPO agent (the RL Zoo's budget for this task)")
    p.add_argument("--a2c-timesteps", type=int, default=500_000, help="env steps per A2C agent")
    p.add_argument("--eval-episodes", type=int, default=20,
                   help="greedy evaluation episodes per trained agent")
    p.add_argument("--out", default=None, help="JSON file for the results (written after each "
                   "agent, so an interrupted run keeps what it finished)")
    add_machine_options(p, device="cpu", keep_memory=False)
    args = p.parse_args(argv)
    for name in ("timesteps", "a2c_timesteps", "eval_episodes"):
        try:
            check_positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
        except ValueError as err:
            p.error(str(err))
    apply_machine_options(p, args)
    if any(a.startswith("contrib") for a in args.agents):
        try:
            import sb3_contrib  # noqa: F401
        except ImportError:
            p.error("the agent contrib-ppo-lstm needs sb3-contrib: pip install sb3-contrib")
    summary = {"task": "CartPole-v1, velocities masked", "device": str(args.device),
               "threads": torch.get_num_threads(), "results": []}
    for key in args.agents:
        for seed in args.seeds:
            steps = args.a2c_timesteps if key.startswith("a2c") else args.timesteps
            result = run(key, seed, steps, args.eval_episodes, str(args.device))
            summary["results"].append(result)
            print(json.dumps(result), flush=True)
            if args.out:
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w") as f:
                    json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
