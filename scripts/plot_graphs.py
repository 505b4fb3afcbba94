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

from metro_pomdp.render import save_graph_grid  # noqa: E402
from training.cli import HelpFormatter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--split", choices=["train", "test", "sample"], default="train",
                        help="which graphs: the fixed train or test set, or fresh samples "
                             "(default: train)")
    parser.add_argument("--n", type=int, default=8, help="number of graphs (default: 8)")
    parser.add_argument("--n-states", type=int, default=5,
                        help="locations per graph (default: 5)")
    parser.add_argument("--n-actions", type=int, default=3, help="actions (default: 3)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the placements and samples (default: 0)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("graphs.png"),
                        help="PNG to write (default: graphs.png)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    try:
        out = save_graph_grid(args.split, args.n, args.out, args.seed, args.n_states,
                              args.n_actions)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
