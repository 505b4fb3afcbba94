#!/usr/bin/env python
"""Save a grid of metro-map graphs as a PNG, in the style of the paper's figure 4 (agent green,
reward yellow, arrows labelled with the actions that take them).

Example:
    python scripts/plot_graphs.py --split test --n 12 --out graphs.png
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")

from metro_pomdp import MetroPOMDPVectorEnv  # noqa: E402
from metro_pomdp.render import draw_graph_grid  # noqa: E402


def save_graph_grid(split: str, n: int, out: pathlib.Path, seed: int = 0, n_states: int = 5,
                    n_actions: int = 3) -> pathlib.Path:
    """Draw the first ``n`` graphs of ``split`` (``"sample"``: ``n`` fresh ones), each with the
    agent and reward placed as at the start of an episode, and save them to ``out``."""
    envs = MetroPOMDPVectorEnv(num_envs=n, graph_set=split, n_states=n_states,
                               n_actions=n_actions)
    _, info = envs.reset(seed=seed)
    titles = [f"{split} graph {g}" if g >= 0 else f"sampled graph {i}"
              for i, g in enumerate(info["graph_index"])]
    fig = draw_graph_grid(envs.adjacency, titles=titles, agents=info["agent"],
                          rewards=info["reward_location"])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["train", "test", "sample"], default="train")
    parser.add_argument("--n", type=int, default=8, help="number of graphs (default: 8)")
    parser.add_argument("--n-states", type=int, default=5)
    parser.add_argument("--n-actions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the placements/samples")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("graphs.png"))
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    print(f"wrote {save_graph_grid(args.split, args.n, args.out, args.seed, args.n_states, args.n_actions)}")


if __name__ == "__main__":
    main()
