"""Plot train and test reward curves of train_agent.py runs (the paper's figure 5) to a PNG, with
the random-policy floor and the graph-knowing shortest-path policy as horizontal lines.

Example::

    python scripts/plot_training.py runs/fwm32-s0 runs/lstm512-s0 --out docs/figure5.png

Reads ``RUN_DIR/progress.csv`` (written by ``scripts/train_agent.py``). The reference lines are
``metro_pomdp.baselines.reference_returns`` on each panel's graphs (10 episodes per graph).
"""

from __future__ import annotations

import argparse

from agents.plots import plot_runs
from training.cli import HelpFormatter


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of scripts/train_agent.py")
    p.add_argument("--labels", nargs="*", default=None, help="legend names (default: folder names)")
    p.add_argument("--out", default="figure5.png", help="PNG to write")
    p.add_argument("--x", choices=["updates", "timesteps", "minutes"], default="updates",
                   help="x axis (minutes: the wall time SB3 logs, added up over resumes; use it "
                        "to compare runs with different numbers of envs)")
    p.add_argument("--no-references", action="store_true",
                   help="leave out the random and shortest-path reference lines")
    args = p.parse_args(argv)
    try:
        plot_runs(args.runs, args.out, args.labels, args.x, references=not args.no_references)
    except (ValueError, FileNotFoundError) as err:
        p.error(str(err))
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
