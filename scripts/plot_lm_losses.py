"""Per-token loss of two language models on a stretch of a split, and their difference (the
paper's figure 6).

Example::

    python scripts/plot_lm_losses.py runs/ptb-lstm/best.pt runs/ptb-fwm/best.pt \\
        --corpus ptb --split test --start 1000 --length 60 --out figure6.png

Both models read the split at batch size 1 from its beginning (so their memories hold what came
before the stretch); the plot shows the tokens ``start+1 .. start+length``.
"""

from __future__ import annotations

import argparse
import math

from lm.data import CORPORA, SPLITS, load_corpus
from lm.model import LanguageModel
from lm.plots import plot_token_losses
from lm.train import token_losses
from training.cli import HelpFormatter, add_data_options


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
    p.add_argument("--start", type=int, default=0, help="first token of the plotted stretch")
    p.add_argument("--length", type=int, default=60, help="tokens plotted")
    add_data_options(p, "the corpus files")
    p.add_argument("--out", default="figure6.png", help="PNG to write")
    args = p.parse_args(argv)
    try:
        corpus = load_corpus(args.corpus, args.data_dir, verify=not args.no_verify)
        models = [LanguageModel.from_checkpoint(path) for path in (args.first, args.second)]
    except (ValueError, FileNotFoundError) as err:
        p.error(str(err))
    data = corpus.split(args.split)
    stop = args.start + args.length
    if args.start < 0 or args.length < 1 or stop >= data.numel():
        p.error(f"--start {args.start} / --length {args.length} must lie within the "
                f"{data.numel()} tokens of {args.split}")
    bits = {name: (token_losses(m, data, stop)[args.start:] / math.log(2)).numpy()
            for name, m in zip(args.names, models)}
    words = [corpus.dictionary.idx2word[i] for i in data[args.start + 1:stop + 1].tolist()]
    plot_token_losses(words, bits, args.out, title=f"{args.corpus} {args.split}, tokens "
                      f"{args.start + 1}-{stop}")
    mean = {name: float(b.mean()) for name, b in bits.items()}
    print(f"wrote {args.out}; mean bits per token: "
          + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    return mean


if __name__ == "__main__":
    main()
