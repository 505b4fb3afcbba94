"""Train an AWD-LSTM or AWD-FWM language model on PTB or WikiText-2, then evaluate it at batch
size 1 with the softmax temperature tuned on validation.

Examples::

    # the paper's PTB run of the FWM (GPU-days: 1000 epochs, ASGD after 916)
    python scripts/train_lm.py --corpus ptb --model fwm --run-dir runs/ptb-fwm
    # a small-budget CPU comparison
    python scripts/train_lm.py --corpus ptb --model lstm --size small --max-tokens 2000000

Several GPUs (or CPU processes): ``torchrun --nproc_per_node N scripts/train_lm.py ...`` trains
data-parallel (DDP), the global ``--batch-size`` split over the processes.

The data directory is ``--data-dir`` or ``$FWM_DATA_DIR``. The run directory gets
``config.json``, ``progress.csv``, TensorBoard logs, ``last.pt`` (resumable: run the same
command again; Ctrl-C saves it), ``best.pt`` and ``results.json`` (loss, perplexity and bits
per word on valid and test at batch size 1, at temperature 1 and at the tuned temperature, and
the training throughput). ``--minutes`` bounds the whole command: training stops in time for the
validation that ends it, and a final evaluation that would not fit is skipped with the command
that runs it later (``--eval-only``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import memory
from lm.data import CORPORA, load_corpus
from lm.model import SIZES, LanguageModel, LMConfig
from lm.train import (
    PRESETS,
    TrainConfig,
    check_resumable,
    evaluate,
    evaluation_batches,
    perplexity_summary,
    train,
)
from training.atomic import torch_load_checkpoint
from training.budget import Budget, estimate_seconds
from training.cli import (
    HelpFormatter,
    add_budget_options,
    add_data_options,
    add_machine_options,
    apply_machine_options,
    eval_only_command,
    evaluation_stops,
    final_evaluation_fits,
    final_evaluation_mode,
    non_negative_float,
    positive_float,
    positive_int,
    stops_as_exit_codes,
)
from training.distributed import init_from_env, rank_and_world, shutdown
from training.runlog import RunLogger

TEMPERATURES = tuple(float(t) for t in np.round(np.arange(0.80, 1.201, 0.05), 2))


def asgd_epoch(text: str) -> int | None:
    """An epoch count, or "none" (never switch to ASGD)."""
    return None if text.lower() == "none" else positive_int(text)


#: ``--model``: AWD-LSTM, AWD-FWM, then every other registered memory core as the last layer
MODELS = ["lstm", "fwm", *(n for n in memory.core_names() if n not in ("fwm", "lstm"))]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--corpus", choices=sorted(CORPORA), default="ptb",
                   help="Penn Treebank or WikiText-2")
    p.add_argument("--model", choices=MODELS, default="fwm",
                   help="AWD-LSTM (lstm), AWD-FWM (fwm: the FWM on the last layer), or the "
                        "last layer as another core of the memory package")
    p.add_argument("--n-heads", type=positive_int, default=None,
                   help="heads of a fast-weight last layer (linear-transformer, delta-net, "
                        "gated-delta-net; default: the core's)")
    p.add_argument("--size", choices=sorted(SIZES), default="paper",
                   help="model size (paper: the AWD sizes of appendix H)")
    p.add_argument("--embedding-size", type=positive_int, help="override the size's embedding size")
    p.add_argument("--hidden-size", type=positive_int, help="override the size's hidden size")
    p.add_argument("--layers", type=positive_int, help="override the size's number of layers")
    p.add_argument("--d-fwm", type=positive_int, default=32, help="FWM size d_FWM (--model fwm)")
    p.add_argument("--n-reads", type=positive_int, default=3, help="chained reads N_r (--model fwm)")
    for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
        p.add_argument(f"--{name}", type=non_negative_float,
                       help="override the corpus preset (table 4)")
    p.add_argument("--epochs", type=positive_int, help="default: the corpus preset")
    p.add_argument("--asgd-epoch", type=asgd_epoch, default=argparse.SUPPRESS,
                   help="switch to ASGD after this many epochs, or 'none' (default: preset)")
    p.add_argument("--asgd-lr", type=positive_float, help="default: the corpus preset")
    p.add_argument("--batch-size", type=positive_int, help="default: the corpus preset")
    p.add_argument("--bptt", type=positive_int, default=70, help="mean tokens per training segment")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--max-tokens", type=positive_int, help="stop after this many training tokens")
    add_budget_options(p, "valid and test at --final-batch-size with the temperature tuned "
                          "on valid, results.json")
    p.add_argument("--eval-every", type=positive_int, help="validate every N batches (default: epoch)")
    p.add_argument("--eval-batch-size", type=positive_int, default=10,
                   help="batch size of the validation during training")
    p.add_argument("--final-batch-size", type=positive_int, default=1,
                   help="batch size of the final valid/test evaluation (paper: 1)")
    p.add_argument("--eval-train", action="store_true",
                   help="also evaluate the training split in the final evaluation (slow: the "
                        "whole split at --final-batch-size)")
    add_data_options(p, "the corpus files")
    p.add_argument("--run-dir", default=None, help="default: runs/<corpus>-<model>")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initialisation, dropout and BPTT lengths")
    add_machine_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    started = time.monotonic()  # --minutes counts from here
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    later = eval_only_command("train_lm.py", argv)
    apply_machine_options(parser, args)
    device = init_from_env(args.device)  # joins the process group under torchrun
    rank, world = rank_and_world()
    run_dir = args.run_dir or os.path.join("runs", f"{args.corpus}-{args.model}")
    preset_train, preset_dropouts = PRESETS[args.corpus]
    overrides = {k: getattr(args, k) for k in ("epochs", "asgd_lr", "batch_size")
                 if getattr(args, k) is not None}
    if hasattr(args, "asgd_epoch"):
        overrides["asgd_epoch"] = args.asgd_epoch
    try:
        config = TrainConfig(**{**preset_train.__dict__, **overrides, "bptt": args.bptt,
                                "lr": args.lr, "max_tokens": args.max_tokens,
                                "eval_every": args.eval_every,
                                "eval_batch_size": args.eval_batch_size, "seed": args.seed})
        corpus = load_corpus(args.corpus, args.data_dir, verify=not args.no_verify)
        sizes = dict(SIZES[args.size])
        for key, arg in (("embedding_size", "embedding_size"), ("hidden_size", "hidden_size"),
                         ("n_layers", "layers")):
            if getattr(args, arg) is not None:
                sizes[key] = getattr(args, arg)
        dropouts = {k: getattr(args, k) if getattr(args, k) is not None else v
                    for k, v in preset_dropouts.items()}
        torch.manual_seed(args.seed)
        if args.n_heads is not None and args.model in ("lstm", "fwm"):
            raise ValueError(f"--n-heads is an option of the fast-weight cores; --model "
                             f"{args.model} has no heads")
        model_config = LMConfig(len(corpus.dictionary),
                                memory="none" if args.model == "lstm" else args.model,
                                d_fwm=args.d_fwm, n_reads=args.n_reads, **sizes, **dropouts,
                                memory_options=None if args.n_heads is None
                                else {"n_heads": args.n_heads})
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    model = LanguageModel(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    try:
        # a run dir with a checkpoint is resumed: refuse other settings before anything is
        # written (config.json keeps describing the run it holds)
        check_resumable(run_dir, model, config, corpus.dictionary.fingerprint())
    except ValueError as err:
        parser.error(str(err))
    best_path = os.path.join(run_dir, "best.pt")
    if args.eval_only and not os.path.exists(best_path):
        parser.error(f"--eval-only evaluates {best_path}, which does not exist: train the run "
                     f"first (the same command without --eval-only)")
    budget = Budget.from_minutes(args.minutes, start=started)
    seconds, row = 0.0, {}
    if not args.eval_only:
        os.makedirs(run_dir, exist_ok=True)
        log = None
        if rank == 0:
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                json.dump({"args": vars(args), "train": config.__dict__, "processes": world,
                           "model": model_config.__dict__, "parameters": n_params}, f,
                          indent=2)
            print(f"{args.model} on {args.corpus}: {n_params:,} parameters, "
                  f"{corpus.train.numel():,} training tokens, {torch.get_num_threads()} "
                  f"threads, {world} process(es); run dir {run_dir}", flush=True)
            log = RunLogger(run_dir)
        start = time.monotonic()
        with stops_as_exit_codes(run_dir):
            try:
                row = train(model, corpus.train, corpus.valid, config, run_dir, device=device,
                            budget=budget, progress=not args.no_progress, log=log,
                            vocabulary=corpus.dictionary.fingerprint())
            finally:
                if log is not None:
                    log.close()
        seconds = time.monotonic() - start
    shutdown()  # every process at once; the final evaluation needs no process group
    if rank != 0:  # the final evaluation runs once, in process 0
        return {}
    last = torch_load_checkpoint(os.path.join(run_dir, "last.pt"), map_location="cpu")
    result = {"model": args.model, "corpus": args.corpus, "parameters": n_params,
              "seed": args.seed, "tokens": last["tokens"], "epochs_done": last["epoch"],
              # this invocation's training (a resumed run: since the resume), validations
              # included, the final evaluation not
              "learn_wall_s": round(seconds, 1), "last_row": row}
    results_path = os.path.join(run_dir, "results.json")
    if args.eval_only and os.path.exists(results_path):  # keep what the training wrote
        with open(results_path) as f:
            result = {**json.load(f), "tokens": result["tokens"],
                      "epochs_done": result["epochs_done"]}
    mode = final_evaluation_mode(args)
    if mode != "never" and not os.path.exists(best_path):
        print(f"no validated model ({best_path}) to evaluate: the budget ended before the "
              f"first validation. Give more --minutes (the same command resumes)", flush=True)
        return result
    with evaluation_stops(run_dir, later):
        return final_evaluation(model, corpus, args, run_dir, device, budget, mode, later,
                                result)


def final_evaluation(model, corpus, args, run_dir: str, device, budget, mode: str, later: str,
                     result: dict) -> dict:
    """The best model on valid (tuning the temperature) and test at ``--final-batch-size``
    (results.json), if ``mode`` and the budget let it run."""
    splits = [corpus.valid, corpus.test] + ([corpus.train] if args.eval_train else [])
    total = sum(evaluation_batches(s, args.final_batch_size, args.bptt) for s in splits)
    if not final_evaluation_fits(
            mode, budget, lambda: estimate_seconds(
                lambda k: evaluate(model, corpus.valid, args.final_batch_size, args.bptt,
                                   TEMPERATURES, device, max_batches=k),
                probe=10, total=total),
            f"the final evaluation ({total:,} segments at batch size "
            f"{args.final_batch_size})", later):
        return result
    best = torch_load_checkpoint(os.path.join(run_dir, "best.pt"), map_location=device)
    model.load_state_dict(best["model"])
    t0 = time.monotonic()

    def bar(split):
        return None if args.no_progress else f"{split} (batch size {args.final_batch_size})"

    valid = evaluate(model, corpus.valid, args.final_batch_size, args.bptt, TEMPERATURES,
                     device, progress=bar("valid"))
    tuned = min(valid, key=valid.get)
    temperatures = tuple(sorted({1.0, tuned}))
    test = evaluate(model, corpus.test, args.final_batch_size, args.bptt, temperatures, device,
                    progress=bar("test"))
    if args.eval_train:
        train_loss = evaluate(model, corpus.train, args.final_batch_size, args.bptt,
                              temperatures, device, progress=bar("train"))
        result["train"] = perplexity_summary(train_loss[1.0])
        result["train_tuned"] = perplexity_summary(train_loss[tuned])
    result.update({
        "best_checkpoint": {k: best[k] for k in ("epoch", "batches", "tokens", "valid_loss")},
        "final_batch_size": args.final_batch_size, "temperature": tuned,
        "valid": perplexity_summary(valid[1.0]), "test": perplexity_summary(test[1.0]),
        "valid_tuned": perplexity_summary(valid[tuned]),
        "test_tuned": perplexity_summary(test[tuned]),
        "eval_seconds": time.monotonic() - t0})
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"valid perplexity {result['valid']['perplexity']:.2f} | test perplexity "
          f"{result['test']['perplexity']:.2f} (temperature 1); tuned temperature {tuned}: "
          f"valid {result['valid_tuned']['perplexity']:.2f} | test "
          f"{result['test_tuned']['perplexity']:.2f}")
    return result


if __name__ == "__main__":
    main()
