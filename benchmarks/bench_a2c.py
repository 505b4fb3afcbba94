"""Training throughput (env steps per second, rollout + update) of RecurrentA2C on MetroPOMDP,
against SB3's own feed-forward ``A2C`` ("MlpPolicy") on the same batched env in the same
process.

Example::

    python benchmarks/bench_a2c.py --n-envs 600 --updates 10
    python benchmarks/bench_a2c.py --device cuda --lstm-sizes 512 4096

Each agent does ``--warmup`` updates, then ``--updates`` timed updates of ``n_envs x 30`` env
steps (the paper's preset); the split into acting (rollout) and learning (update) is measured
on the same updates.
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback

from agents.a2c import PAPER_PRESET, RecurrentA2C
from agents.vec_env import make_metro_vec_env
from training.cli import HelpFormatter, add_machine_options, apply_machine_options


class _Split(BaseCallback):
    """Accumulates the wall time spent in rollouts."""

    def __init__(self):
        super().__init__()
        self.rollout_s = 0.0

    def _on_rollout_start(self) -> None:
        self._t = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.rollout_s += time.perf_counter() - self._t

    def _on_step(self) -> bool:
        return True


def measure(model, n_envs: int, warmup: int, updates: int, n_steps: int) -> dict:
    model.learn(warmup * n_envs * n_steps)
    split = _Split()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.learn(updates * n_envs * n_steps, callback=split, reset_num_timesteps=False)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    steps = updates * n_envs * n_steps
    return {"env_steps_per_s": steps / wall, "rollout_share": split.rollout_s / wall,
            "parameters": sum(p.numel() for p in model.policy.parameters())}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--n-envs", type=int, default=600, help="parallel envs (the paper: 600)")
    p.add_argument("--updates", type=int, default=10, help="timed updates per agent")
    p.add_argument("--warmup", type=int, default=2, help="untimed updates first")
    p.add_argument("--lstm-sizes", type=int, nargs="*", default=[32, 512],
                   help="LSTM baselines to time")
    p.add_argument("--net-arch", type=int, nargs="*", default=[],
                   help="actor and critic MLP widths of the recurrent agents (none: the "
                        "paper's linear heads; scripts/train_agent.py trains with 64 64)")
    add_machine_options(p, device="cpu")
    args = p.parse_args(argv)
    kept = apply_machine_options(p, args)
    n_steps = PAPER_PRESET["n_steps"]
    env = make_metro_vec_env("MetroPOMDP-v0", num_envs=args.n_envs)
    print(f"device {args.device}, {torch.get_num_threads()} threads, {args.n_envs} envs x "
          f"{n_steps} steps per update, {args.updates} timed updates, recurrent agents' heads "
          f"{args.net_arch or 'linear'}, freed memory kept: {kept}")
    results = {}
    base = A2C("MlpPolicy", env, n_steps=n_steps, gamma=0.9, device=args.device, seed=0)
    results["sb3 A2C MlpPolicy (feed-forward)"] = measure(base, args.n_envs, args.warmup,
                                                          args.updates, n_steps)
    heads = {"net_arch": args.net_arch}
    agents = {"RecurrentA2C FWM-32-16": {"core": "fwm", "hidden_size": 32, "d_fwm": 16, **heads}}
    for size in args.lstm_sizes:
        agents[f"RecurrentA2C LSTM-{size}"] = {"core": "lstm", "hidden_size": size, **heads}
    for name, kwargs in agents.items():
        model = RecurrentA2C("RecurrentActorCriticPolicy", env, policy_kwargs=kwargs, seed=0,
                             device=args.device, **PAPER_PRESET)
        results[name] = measure(model, args.n_envs, args.warmup, args.updates, n_steps)
    ref = results["sb3 A2C MlpPolicy (feed-forward)"]["env_steps_per_s"]
    print(f"{'agent':<36}{'params':>10}{'env-steps/s':>14}{'vs A2C-MLP':>12}{'acting':>9}")
    for name, r in results.items():
        r["ratio_vs_sb3_a2c"] = r["env_steps_per_s"] / ref
        print(f"{name:<36}{r['parameters']:>10,}{r['env_steps_per_s']:>14,.0f}"
              f"{r['ratio_vs_sb3_a2c']:>11.2f}x{r['rollout_share']:>8.0%}")
    return {"device": args.device, "threads": torch.get_num_threads(), "n_envs": args.n_envs,
            "results": results}


if __name__ == "__main__":
    main()
