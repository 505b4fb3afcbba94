"""Training throughput (env steps per second, rollout + update) of RecurrentA2C on MetroPOMDP,
against SB3's own feed-forward ``A2C`` ("MlpPolicy") on the same batched env in the same
process.

Example::

    python benchmarks/bench_a2c.py --n-envs 600 --updates 10
    python benchmarks/bench_a2c.py --device cuda --lstm-sizes 512 4096

Each agent does ``--warmup`` updates, then ``--updates`` timed updates of ``n_envs x 30`` env
steps (the paper's preset); the split into acting (rollout) and learning (update) is measured
on the same updates.

``--env-on-device`` also times each recurrent agent with the env as torch tensors on
``--device`` (``MetroPOMDPVectorEnv(device=...)``: the rollout never leaves the device) beside
the numpy env on the CPU (one copy each way per step).

``--kernels N`` then runs N more updates of each agent under ``torch.profiler`` (CPU only) and
adds the time per update spent inside the matrix-product kernels (``mm``, ``addmm``, ``bmm``,
``baddbmm`` and oneDNN's LSTM layer, forward and backward): the part of an update that no
saving of Python or elementwise work can remove, as PyTorch runs those kernels at these sizes.
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


#: The kernels that do an update's matrix products on a CPU (their self time, so that nested
#: calls are counted once).
MATRIX_KERNELS = frozenset({"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm",
                            "aten::baddbmm", "aten::baddbmm_", "aten::mkldnn_rnn_layer",
                            "aten::mkldnn_rnn_layer_backward"})


def matrix_kernel_ms(model, n_envs: int, updates: int, n_steps: int) -> float:
    """Milliseconds per update inside :data:`MATRIX_KERNELS`, profiled over ``updates``
    updates."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.learn(updates * n_envs * n_steps, reset_num_timesteps=False)
    self_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATRIX_KERNELS)
    return self_us / 1e3 / updates


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
            "ms_per_update": wall / updates * 1e3,
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
    p.add_argument("--kernels", type=int, default=0, metavar="N",
                   help="then profile N more updates of each agent and add the milliseconds "
                        "per update spent in matrix-product kernels (CPU only; 0: don't)")
    p.add_argument("--env-on-device", action="store_true",
                   help="also time each recurrent agent with the env on --device (torch "
                        "tensors there) instead of numpy on the CPU")
    add_machine_options(p, device="cpu")
    args = p.parse_args(argv)
    kept = apply_machine_options(p, args)
    if args.kernels < 0:
        p.error(f"--kernels must be 0 or a positive number of updates, got {args.kernels}")
    if args.kernels and args.device != "cpu":
        p.error(f"--kernels times CPU kernels; it needs --device cpu, got {args.device!r}")
    n_steps = PAPER_PRESET["n_steps"]
    env = make_metro_vec_env("MetroPOMDP-v0", num_envs=args.n_envs)
    print(f"device {args.device}, {torch.get_num_threads()} threads, {args.n_envs} envs x "
          f"{n_steps} steps per update, {args.updates} timed updates, recurrent agents' heads "
          f"{args.net_arch or 'linear'}, freed memory kept: {kept}")
    results = {}

    def run(name, model):
        results[name] = measure(model, args.n_envs, args.warmup, args.updates, n_steps)
        if args.kernels:
            results[name]["matrix_kernel_ms"] = matrix_kernel_ms(model, args.n_envs,
                                                                 args.kernels, n_steps)

    run("sb3 A2C MlpPolicy (feed-forward)",
        A2C("MlpPolicy", env, n_steps=n_steps, gamma=0.9, device=args.device, seed=0))
    heads = {"net_arch": args.net_arch}
    agents = {"RecurrentA2C FWM-32-16": {"core": "fwm", "hidden_size": 32, "d_fwm": 16, **heads}}
    for size in args.lstm_sizes:
        agents[f"RecurrentA2C LSTM-{size}"] = {"core": "lstm", "hidden_size": size, **heads}
    device_env = None
    if args.env_on_device:
        import gymnasium as gym

        device_env = gym.make_vec("MetroPOMDP-v0", num_envs=args.n_envs,
                                  autoreset_mode="SameStep", device=args.device)
    for name, kwargs in agents.items():
        run(name, RecurrentA2C("RecurrentActorCriticPolicy", env, policy_kwargs=kwargs, seed=0,
                               device=args.device, **PAPER_PRESET))
        if device_env is not None:
            run(f"{name}, env on {args.device}",
                RecurrentA2C("RecurrentActorCriticPolicy", device_env, policy_kwargs=kwargs,
                             seed=0, device=args.device, **PAPER_PRESET))
    ref = results["sb3 A2C MlpPolicy (feed-forward)"]["env_steps_per_s"]
    kernels = f"{'matmul ms':>11}" if args.kernels else ""
    print(f"{'agent':<44}{'params':>10}{'env-steps/s':>14}{'vs A2C-MLP':>12}{'acting':>9}"
          f"{'ms/update':>11}{kernels}")
    for name, r in results.items():
        r["ratio_vs_sb3_a2c"] = r["env_steps_per_s"] / ref
        kernels = f"{r['matrix_kernel_ms']:>11.1f}" if args.kernels else ""
        print(f"{name:<44}{r['parameters']:>10,}{r['env_steps_per_s']:>14,.0f}"
              f"{r['ratio_vs_sb3_a2c']:>11.2f}x{r['rollout_share']:>8.0%}"
              f"{r['ms_per_update']:>11.1f}{kernels}")
    return {"device": args.device, "threads": torch.get_num_threads(), "n_envs": args.n_envs,
            "results": results}


if __name__ == "__main__":
    main()
