#!/usr/bin/env python
"""Benchmark: env-steps/s of the native MetroPOMDPVectorEnv against gymnasium's SyncVectorEnv
over the same number of single MetroPOMDPEnv s, in one process, with their ratio; and the
native env as the agents see it (an SB3 VecEnv under SB3's VecMonitor and under
BatchedVecMonitor).

Example:
    python benchmarks/bench_env.py --num-envs 600
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import metro_pomdp  # noqa: F401  (registers the envs)
from agents.vec_env import BatchedVecMonitor, make_metro_vec_env
from training.cli import HelpFormatter


def steps_per_second(envs, n_steps: int, seed: int = 0, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of ``n_steps`` batched steps with random actions, of a
    Gymnasium vector env or an SB3 ``VecEnv`` (which seeds and resets in two calls)."""
    sb3 = isinstance(envs, VecEnv)
    space = envs.action_space if sb3 else envs.single_action_space
    rng = np.random.default_rng(seed)
    actions = rng.integers(space.n, size=(n_steps, envs.num_envs))
    best = 0.0
    for _ in range(repeats):
        if sb3:
            envs.seed(seed)
            envs.reset()
        else:
            envs.reset(seed=seed)
        start = time.perf_counter()
        for a in actions:
            envs.step(a)
        best = max(best, n_steps * envs.num_envs / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--num-envs", type=int, default=600, help="parallel envs")
    parser.add_argument("--steps", type=int, default=3000,
                        help="batched steps per timing of the native env (default: 3000)")
    parser.add_argument("--sync-steps", type=int, default=60,
                        help="batched steps per timing of SyncVectorEnv (default: 60)")
    args = parser.parse_args(argv)

    rows = {}
    for mode in ("NextStep", "SameStep"):
        native = gym.make_vec("MetroPOMDP-v0", num_envs=args.num_envs, autoreset_mode=mode)
        rows[f"native MetroPOMDPVectorEnv ({mode})"] = steps_per_second(native, args.steps)
    sync = gym.make_vec("MetroPOMDP-v0", num_envs=args.num_envs, vectorization_mode="sync")
    sync_rate = steps_per_second(sync, args.sync_steps)
    rows["gymnasium SyncVectorEnv (NextStep)"] = sync_rate
    for monitor in (VecMonitor, BatchedVecMonitor):
        venv = monitor(make_metro_vec_env(num_envs=args.num_envs, monitor=False))
        rows[f"SameStep as SB3 VecEnv, {monitor.__name__}"] = steps_per_second(venv, args.steps)

    print(f"MetroPOMDP-v0, {args.num_envs} envs, {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, gymnasium {gym.__version__}")
    print(f"| {'vector env':<46} | {'env-steps/s':>12} | {'vs Sync':>8} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 10}|")
    for name, rate in rows.items():
        print(f"| {name:<46} | {rate:>12,.0f} | {rate / sync_rate:>7.1f}x |")
    return rows


if __name__ == "__main__":
    main()
