"""Per-token loss of two language models on a stretch of a split, and their difference (the
paper's figure 6), with the whole split's loss difference on recurring and on new tokens.

Example::

    python scripts/plot_lm_losses.py runs/ptb-lstm/best.pt runs/ptb-fwm/best.pt \\
        --corpus ptb --split test --start names --length 60 --out figure6.png

Both models read the split at batch size 1 from its beginning (so their memories hold what came
before the stretch); the plot shows the tokens ``start+1 .. start+length``. ``--start names``
picks the stretch with the most repeats of rare words (names and the like), from the text
alone. With ``--whole`` both models score the whole split, and the mean loss of each on the
tokens that occurred within the previous ``--window`` tokens and on the others is printed and
written to ``--json`` (the paper's claim: the FWM gains most where a word recurs).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from lm.data import CORPORA, SPLITS, load_corpus, rare_repeat_stretch, recurs_within
from lm.model import LanguageModel
from lm.plots import plot_token_losses
from lm.train import token_losses
from training.cli import (
    HelpFormatter,
    add_data_options,
    add_machine_options,
    apply_machine_options,
    positive_int,
)


def start_arg(text: str) -> int | str:
    """A token index >= 0, or "names"."""
    if text == "names":
        return text
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a token index >= 0 or 'names', got {value}")
    return value


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("first", help="checkpoint of the first model (e.g. the LSTM's best.pt)")
    p.add_argument("second", help="checkpoint of the second model (e.g. the FWM's best.pt)")
    p.add_argument("--names", nargs=2, default=["LSTM", "FWM"],
                   help="legend names of the two checkpoints")
    p.add_argument("--corpus", choices=sorted(CORPORA), default="ptb",
                   help="corpus the checkpoints were trained on")
    p.add_argument("--split", choices=SPLITS, default="test", help="split whose text is scored")
    p.add_argument("--start", type=start_arg, default=0,
                   help="first token of the plotted stretch, or 'names': the stretch with the "
                        "most repeats of words seen at most 20 times in training")
    p.add_argument("--length", type=positive_int, default=60, help="tokens plotted")
    p.add_argument("--whole", action="store_true",
                   help="score the whole split and compare recurring with new tokens")
    p.add_argument("--window", type=positive_int, default=500,
                   help="--whole: a token recurs if it occurred among this many before it")
    p.add_argument("--json", default=None, help="--whole: also write the numbers here")
    add_machine_options(p, device=None, keep_memory=False)
    add_data_options(p, "the corpus files")
    p.add_argument("--out", default="figure6.png", help="PNG to write")
    args = p.parse_args(argv)
    apply_machine_options(p, args)
    try:
        corpus = load_corpus(args.corpus, args.data_dir, verify=not args.no_verify)
        models = [LanguageModel.from_checkpoint(path) for path in (args.first, args.second)]
    except (ValueError, FileNotFoundError) as err:
        p.error(str(err))
    data = corpus.split(args.split)
    if args.start == "names":
        counts = np.bincount(corpus.train.numpy(), minlength=len(corpus.dictionary))
        args.start = rare_repeat_stretch(data[1:].tolist(), counts, args.length)
        print(f"--start names: tokens {args.start + 1}-{args.start + args.length} hold the "
              f"most repeats of rare words")
    stop = args.start + args.length
    if args.length < 1 or stop >= data.numel():
        p.error(f"--start {args.start} / --length {args.length} must lie within the "
                f"{data.numel()} tokens of {args.split}")
    end = data.numel() - 1 if args.whole else stop
    bits = {name: (token_losses(m, data, end) / math.log(2)).numpy()
            for name, m in zip(args.names, models)}
    words = [corpus.dictionary.idx2word[i] for i in data[args.start + 1:stop + 1].tolist()]
    plot_token_losses(words, {k: v[args.start:stop] for k, v in bits.items()}, args.out,
                      title=f"{args.corpus} {args.split}, tokens {args.start + 1}-{stop}")
    mean = {name: float(b[args.start:stop].mean()) for name, b in bits.items()}
    print(f"wrote {args.out}; mean bits per token of the stretch: "
          + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    result = {"stretch": {"start": args.start, "length": args.length, "bits": mean}}
    if args.whole:
        result["whole"] = recurring_summary(bits, data[1:end + 1].tolist(), args.window,
                                            args.names)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    return result


def recurring_summary(bits: dict[str, np.ndarray], targets: list[int], window: int,
                      names: list[str]) -> dict:
    """Mean bits of each model, and the first's minus the second's, on the targets that
    occurred within the previous ``window`` tokens and on the others; printed as a table."""
    recurs = recurs_within(targets, window)
    a, b = (bits[n] for n in names)
    out = {"window": window}
    print(f"whole split, {len(targets):,} tokens; a token recurs if it occurred within the "
          f"previous {window}:")
    width = max(10, *(len(n) + 2 for n in names))  # a name never runs into the next column
    print(f"{'tokens':<12}{'count':>9}{names[0]:>{width}}{names[1]:>{width}}{'difference':>12}")
    for key, mask in (("recurring", recurs), ("new", ~recurs), ("all", np.ones_like(recurs))):
        row = {"tokens": int(mask.sum()), names[0]: float(a[mask].mean()),
               names[1]: float(b[mask].mean()),
               "difference": float((a[mask] - b[mask]).mean())}
        out[key] = row
        print(f"{key:<12}{row['tokens']:>9,}{row[names[0]]:>{width}.3f}{row[names[1]]:>{width}.3f}"
              f"{row['difference']:>12.3f}")
    print("(mean bits per token; difference: first minus second model)")
    return out


if __name__ == "__main__":
    main()
