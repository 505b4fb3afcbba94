#!/usr/bin/env python
"""Benchmark the language models: training tokens/s (forward + backward with AR/TAR, clipping
and Adam, dropouts on) and batch-size-1 evaluation tokens/s of AWD-LSTM and AWD-FWM at the same
size, in one process, with the FWM's cost as a ratio to the LSTM's. Not a test: prints a table.

Example:
    python benchmarks/bench_lm.py --size small
    python benchmarks/bench_lm.py --size paper --device cuda
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from lm.model import SIZES, LanguageModel, LMConfig
from training.cli import (
    HelpFormatter,
    add_machine_options,
    apply_machine_options,
    positive_int,
)
from training.regularization import (
    activation_regularization,
    temporal_activation_regularization,
)

SIZES = {**SIZES, "tiny": {"embedding_size": 8, "hidden_size": 8, "n_layers": 2, "d_fwm": 4}}


def best_time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def rates(memory: str, sizes: dict, args) -> tuple[float, float]:
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(args.vocab, memory=memory, **sizes)).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.randint(0, args.vocab, (args.bptt + 1, args.batch_size), device=args.device)

    def train_step():
        out = model(data[:-1])
        loss = (F.cross_entropy(out.logits.flatten(0, 1), data[1:].flatten())
                + activation_regularization(out.dropped, 2.0)
                + temporal_activation_regularization(out.raw, 1.0))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    one = data[:, :1]

    @torch.no_grad()
    def eval_step():
        model.eval()
        model(one[:-1])
        model.train()

    train = args.bptt * args.batch_size / best_time(train_step, args.repeats, args.device)
    evaluate = args.bptt / best_time(eval_step, args.repeats, args.device)
    return train, evaluate


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small", help="model size")
    p.add_argument("--embedding-size", type=positive_int, default=None,
                   help="override the size's embedding size (tied with the softmax: on a "
                        "large vocabulary most of a token's cost)")
    p.add_argument("--hidden-size", type=positive_int, default=None,
                   help="override the size's hidden size")
    p.add_argument("--vocab", type=int, default=10_000,
                   help="vocabulary size (PTB's; WikiText-2's is 33278)")
    p.add_argument("--batch-size", type=int, default=20, help="training batch size")
    p.add_argument("--bptt", type=int, default=70, help="tokens per training segment")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed calls per row; the best is reported")
    add_machine_options(p, keep_memory=False)
    args = p.parse_args(argv)
    apply_machine_options(p, args)
    overrides = {"embedding_size": args.embedding_size, "hidden_size": args.hidden_size}
    sizes = {**SIZES[args.size], **{k: v for k, v in overrides.items() if v is not None}}
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}; size {args.size} (embedding {sizes['embedding_size']}, "
          f"hidden {sizes['hidden_size']}), B={args.batch_size}, T={args.bptt}, "
          f"V={args.vocab}; best of {args.repeats}")
    results = {m: rates(m, sizes, args) for m in ("none", "fwm")}
    base_train, base_eval = results["none"]
    print(f"{'model':<10} {'train tok/s':>12} {'vs LSTM':>8} {'eval B=1 tok/s':>15} {'vs LSTM':>8}")
    for memory, name in (("none", "AWD-LSTM"), ("fwm", "AWD-FWM")):
        tr, ev = results[memory]
        print(f"{name:<10} {tr:>12,.0f} {tr / base_train:>7.2f}x {ev:>15,.0f} "
              f"{ev / base_eval:>7.2f}x")
    return {"lstm": results["none"], "fwm": results["fwm"]}


if __name__ == "__main__":
    main()
