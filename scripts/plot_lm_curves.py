"""Validation perplexity of train_lm.py runs over epochs and over minutes, in one figure.

Example::

    python scripts/plot_lm_curves.py runs/ptb-lstm runs/ptb-fwm --labels AWD-LSTM AWD-FWM \\
        --out ptb_curves.png
"""

from __future__ import annotations

import argparse
import os

from lm.plots import plot_validation_curves
from training.cli import HelpFormatter


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="train_lm.py run folders (progress.csv)")
    p.add_argument("--labels", nargs="+", default=None,
                   help="legend names, one per run (default: the folder names)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--out", default="lm_curves.png", help="PNG to write")
    args = p.parse_args(argv)
    labels = args.labels or [os.path.basename(os.path.normpath(r)) for r in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"--labels: {len(labels)} names for {len(args.runs)} runs")
    try:
        plot_validation_curves(dict(zip(labels, args.runs)), args.out, args.title)
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
