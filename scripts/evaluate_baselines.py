#!/usr/bin/env python
"""Evaluate the random and the shortest-path (graph-knowing) policies on the paper's train and
test graphs, print mean episode reward, and save a picture of sampled graphs.

Example:
    python scripts/evaluate_baselines.py --episodes 10 --out runs/baselines
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from metro_pomdp.baselines import POLICIES, evaluate_policy_returns
from training.cli import HelpFormatter


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--episodes", type=int, default=10,
                        help="episodes per graph (600 graphs per split; default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="environment and policy seed")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/baselines"),
                        help="output folder for results.json and graphs.png")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    args.out.mkdir(parents=True, exist_ok=True)

    results = {}
    print(f"{'policy':<15}{'split':<7}{'mean reward':>12}{'std':>8}{'episodes':>10}")
    for policy in POLICIES:
        for split in ("train", "test"):
            start = time.perf_counter()
            returns = evaluate_policy_returns(policy, split, episodes=args.episodes,
                                              seed=args.seed)
            results[f"{policy}/{split}"] = {"mean": float(returns.mean()),
                                            "std": float(returns.std()),
                                            "episodes": int(returns.size),
                                            "seconds": time.perf_counter() - start}
            print(f"{policy:<15}{split:<7}{returns.mean():>12.2f}{returns.std():>8.2f}"
                  f"{returns.size:>10}")
    (args.out / "results.json").write_text(json.dumps(results, indent=2))

    from metro_pomdp.render import save_graph_grid
    png = save_graph_grid("train", 8, args.out / "graphs.png", seed=args.seed)
    print(f"wrote {args.out / 'results.json'} and {png}")
    return results


if __name__ == "__main__":
    main()
