"""Diagnostic: how fast do recurrent A2C agents learn a task without memory? All 64 envs use ONE
fixed training graph, so a memoryless policy can learn shortest paths from the observed agent
and reward locations (~170 reward). Compares linear heads (the paper's agent) with SB3-style
64-64 actor/critic MLPs on the core, the FWM's read output W_o initialised by PyTorch's default
or at zero (the agent starts as its LSTM), and SB3's feed-forward A2C as the yardstick, all
with the paper's A2C settings.

Example::

    python benchmarks/heads_check.py --updates 160 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import A2C
from stable_baselines3.common.vec_env import VecMonitor

from agents.a2c import PAPER_PRESET, RecurrentA2C

#: the paper's settings that SB3's own A2C takes (its gradient clipping stays SB3's default)
SB3_A2C_KEYS = ("n_steps", "gamma", "ent_coef", "vf_coef", "learning_rate")
from agents.vec_env import GymnasiumVecEnv
from metro_pomdp import MetroPOMDPVectorEnv, graph_set
from training.cli import HelpFormatter


def single_graph_env(n_envs: int):
    graphs = graph_set("train", 5, 3)[:1]
    return MetroPOMDPVectorEnv(num_envs=n_envs, autoreset_mode="SameStep", graphs=graphs)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--updates", type=int, default=160, help="updates per agent")
    p.add_argument("--n-envs", type=int, default=64, help="parallel envs, all on the same graph")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds; each agent is trained once per seed and the mean is reported")
    args = p.parse_args(argv)
    steps = args.updates * args.n_envs * PAPER_PRESET["n_steps"]
    fwm = {"core": "fwm", "hidden_size": 32, "d_fwm": 16}
    agents = {
        "FWM-32-16, linear heads": fwm,
        "FWM-32-16, 64-64 MLP heads": {**fwm, "net_arch": [64, 64]},
        "FWM-32-16, 64-64 MLP heads, W_o = 0": {**fwm, "net_arch": [64, 64],
                                                "core_kwargs": {"zero_init_output": True}},
        "LSTM-32, linear heads": {"core": "lstm", "hidden_size": 32},
        "LSTM-32, 64-64 MLP heads": {"core": "lstm", "hidden_size": 32, "net_arch": [64, 64]},
        "SB3 A2C MlpPolicy (feed-forward 64-64)": None,
    }

    def train(kwargs, seed: int) -> float:
        if kwargs is None:  # SB3's own feed-forward A2C, same settings
            model = A2C("MlpPolicy", VecMonitor(GymnasiumVecEnv(single_graph_env(args.n_envs))),
                        **{k: PAPER_PRESET[k] for k in SB3_A2C_KEYS}, seed=seed, device="cpu",
                        policy_kwargs={"optimizer_class": torch.optim.Adam,
                                       "optimizer_kwargs": {"eps": 1e-4}})
        else:
            model = RecurrentA2C("RecurrentActorCriticPolicy", single_graph_env(args.n_envs),
                                 policy_kwargs=kwargs, seed=seed, device="cpu", **PAPER_PRESET)
        model.learn(steps)
        return float(np.mean([e["r"] for e in model.ep_info_buffer]))

    results = {}
    print(f"{args.updates} updates of {args.n_envs} episodes on one fixed graph, seeds "
          f"{args.seeds}")
    for name, kwargs in agents.items():
        start = time.perf_counter()
        per_seed = [train(kwargs, seed) for seed in args.seeds]
        results[name] = {"mean": float(np.mean(per_seed)), "per_seed": per_seed}
        print(f"{name:<40}{results[name]['mean']:>8.1f}   per seed "
              f"{' '.join(f'{r:.1f}' for r in per_seed)}   ({time.perf_counter() - start:.0f} s)",
              flush=True)
    print("(mean reward of the last 100 training episodes; random ~44, shortest path ~171)")
    return results


if __name__ == "__main__":
    main()
