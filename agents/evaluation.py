"""Evaluate an agent on the train and the held-out test graphs, several episodes per graph,
with sampled and with greedy actions: the protocol of ``scripts/evaluate_agent.py``, of the
shipped agents' model cards (:mod:`agents.pretrained`) and of ``scripts/showcase.py``.

Env i plays graph i; the envs and the action sampling are seeded, so a second call gives the
same numbers on the same machine and torch build.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from agents.callbacks import episode_rewards
from agents.vec_env import make_vec_env

#: actions: sampled from the policy (as the evaluations during training) or its most likely
#: one (SB3's ``evaluate_policy`` default)
MODES = {"sampled": False, "greedy": True}


def evaluate_splits(model, env_ids: dict[str, str], episodes: int = 10, n_graphs: int = 600,
                    modes: tuple[str, ...] = tuple(MODES), seed: int = 0,
                    print_table: bool = False) -> dict[str, dict]:
    """Mean episode reward and its standard error on each env set and action mode.

    Args:
        model: a :class:`~agents.a2c.RecurrentA2C`.
        env_ids: split name -> env id, e.g. ``{"train": "MetroPOMDP-v0", "test":
            "MetroPOMDP-Test-v0"}``.
        episodes: episodes per graph (per env).
        n_graphs: envs per split; env i plays graph i.
        modes: keys of :data:`MODES`.
        seed: seed of the envs and of the action sampling (``torch.manual_seed``).
        print_table: print a row per result as it is measured.

    Returns:
        ``{"<mode>/<split>": {"mean", "stderr", "episodes"}}`` (the same numbers on every
        call: no timings).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"modes must be among {list(MODES)}, got {sorted(unknown)}")
    envs = {split: make_vec_env(env_id, n_graphs) for split, env_id in env_ids.items()}
    results = {}
    if print_table:
        print(f"{'actions':<9}{'split':<7}{'mean reward':>12}{'s.e.':>7}{'episodes':>10}"
              f"{'s':>7}")
    try:
        for mode in modes:
            for split, env in envs.items():
                torch.manual_seed(seed)  # the action sampling
                start = time.perf_counter()
                rewards = episode_rewards(model, {split: env}, episodes * n_graphs,
                                          MODES[mode], seed)[split]
                seconds = time.perf_counter() - start
                stderr = (float(rewards.std(ddof=1) / np.sqrt(len(rewards)))
                          if len(rewards) > 1 else float("nan"))
                results[f"{mode}/{split}"] = {"mean": float(rewards.mean()), "stderr": stderr,
                                              "episodes": len(rewards)}
                if print_table:
                    print(f"{mode:<9}{split:<7}{rewards.mean():>12.2f}{stderr:>7.2f}"
                          f"{len(rewards):>10}{seconds:>7.1f}", flush=True)
    finally:
        for env in envs.values():
            env.close()
    return results
