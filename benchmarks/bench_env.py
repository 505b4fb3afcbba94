#!/usr/bin/env python
"""Benchmark: env-steps/s of the native MetroPOMDPVectorEnv against gymnasium's SyncVectorEnv
over the same number of single MetroPOMDPEnv s, in one process, with their ratio; and the
native env as the agents see it (an SB3 VecEnv under SB3's VecMonitor and under
BatchedVecMonitor).

Example:
    python benchmarks/bench_env.py --num-envs 600
    python benchmarks/bench_env.py --device cuda --device-envs 600 6000 60000

``--device D`` adds the env as torch tensors on D (the same dynamics, ``device=D``) beside the
numpy env, both drawing each episode's graph from the train set (``random_graph=True``: a
fixed set of 600 graphs cannot give more than 600 envs one each), at each ``--device-envs``
size; the actions are drawn in advance, on the device for the torch env.
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


def device_steps_per_second(device: str, num_envs: int, n_steps: int, seed: int = 0,
                            repeats: int = 3) -> float:
    """Best of ``repeats`` timings of the torch env on ``device`` (SameStep, random graphs),
    random actions drawn in advance on the device; the clock stops after the device has
    finished."""
    import torch

    envs = gym.make_vec("MetroPOMDP-v0", num_envs=num_envs, autoreset_mode="SameStep",
                        random_graph=True, device=device)
    g = torch.Generator(device=envs.device).manual_seed(seed)
    actions = torch.randint(envs.single_action_space.n, (n_steps, num_envs), generator=g,
                            device=envs.device)

    def sync():
        if envs.device.type == "cuda":
            torch.cuda.synchronize(envs.device)

    best = 0.0
    for _ in range(repeats):
        envs.reset(seed=seed)
        sync()
        start = time.perf_counter()
        for a in actions:
            envs.step(a)
        sync()
        best = max(best, n_steps * num_envs / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--num-envs", type=int, default=600, help="parallel envs")
    parser.add_argument("--steps", type=int, default=3000,
                        help="batched steps per timing of the native env (default: 3000)")
    parser.add_argument("--sync-steps", type=int, default=60,
                        help="batched steps per timing of SyncVectorEnv (default: 60)")
    parser.add_argument("--device", default=None,
                        help="also time the env as torch tensors on this device ('cuda', "
                             "'cpu'), beside the numpy env, at each --device-envs size")
    parser.add_argument("--device-envs", type=int, nargs="+", default=[600, 6000, 60000],
                        help="env counts of the --device comparison (steps per timing: "
                             "--steps x 600 / envs, at least 30)")
    args = parser.parse_args(argv)
    for n in [args.num_envs, *args.device_envs]:
        if n < 1:
            parser.error(f"env counts must be positive, got {n}")

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
    if args.device is None:
        return rows
    import torch

    print(f"\nrandom graphs, SameStep, torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(args.device)})"
             if torch.device(args.device).type == "cuda" else ""))
    print(f"| {'envs':>7} | {'numpy env-steps/s':>18} | {'torch env-steps/s':>18} | "
          f"{'torch/numpy':>11} |")
    print(f"|{'-' * 9}|{'-' * 20}|{'-' * 20}|{'-' * 13}|")
    for n in args.device_envs:
        steps = max(30, args.steps * 600 // n)
        numpy_env = gym.make_vec("MetroPOMDP-v0", num_envs=n, autoreset_mode="SameStep",
                                 random_graph=True)
        numpy_rate = steps_per_second(numpy_env, steps)
        torch_rate = device_steps_per_second(args.device, n, steps)
        rows[f"numpy env, random graphs, {n} envs"] = numpy_rate
        rows[f"torch env on {args.device}, random graphs, {n} envs"] = torch_rate
        print(f"| {n:>7,} | {numpy_rate:>18,.0f} | {torch_rate:>18,.0f} | "
              f"{torch_rate / numpy_rate:>10.2f}x |")
    return rows


if __name__ == "__main__":
    main()
