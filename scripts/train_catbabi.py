"""Train a catbAbI model (the FWM of section 4.1, the LSTM baseline of appendix F.4, or any
memory core between an embedding and a decoder) and evaluate it on the test stream.

Example::

    FWM_DATA_DIR=data python scripts/train_catbabi.py --minutes 60 --run-dir runs/qa

Trains in QA mode (``--mode lm`` for LM mode) on the endless training stream (batch 32, BPTT 200,
Adam 1e-3: the paper's run), validates every ``--eval-every`` steps on the fixed validation
order, keeps ``RUN_DIR/last.pt`` (resumable: run the same command again) and ``RUN_DIR/best.pt``,
logs to ``RUN_DIR/progress.csv`` and TensorBoard, and at the end evaluates the best model on
the test stream at batch size 1 from a zero state, writing ``RUN_DIR/test.json`` (overall and
per-task accuracy and perplexity). ``--minutes`` bounds the whole command: training stops in
time for the validation that ends it, and a test evaluation that would not fit is skipped with
the command that runs it later (``--eval-only``).
``torchrun --nproc_per_node N scripts/train_catbabi.py ...``
trains data-parallel (DDP), the global ``--batch-size`` split over the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

import memory
from qa.data import EncodedStories, Vocabulary, evaluation_batches, load_split
from qa.models import MODEL_SETTINGS, CoreModel, FWMModel, LSTMModel, core_model_name
from qa.train import TrainConfig, check_resumable, evaluate, train
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
    positive_float,
    positive_int,
    stops_as_exit_codes,
)
from training.distributed import init_from_env, rank_and_world, shutdown
from training.runlog import RunLogger

#: ``--model``: the paper's two models, then every registered memory core other than the FWM
#: in CoreModel's frame (the LSTM core as ``lstm-core``), mapped to the core's name
CORE_MODELS = {core_model_name(name): name for name in memory.core_names() if name != "fwm"}
MODELS = ["fwm", "lstm", *CORE_MODELS]


def main(argv=None) -> dict:
    started = time.monotonic()  # --minutes counts from here
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    add_data_options(p, "the bAbI files")
    p.add_argument("--run-dir", default="runs/catbabi-fwm",
                   help="folder for last.pt, best.pt, logs and test.json; a folder with last.pt "
                        "is resumed")
    p.add_argument("--model", choices=MODELS, default="fwm",
                   help="the FWM (the paper's model); the regularised 4 x 512 LSTM of appendix "
                        "F.4 (lstm); or embedding -> a memory core -> decoder for any other "
                        "core of the memory package (lstm-core: its one-layer LSTM core, "
                        "--hidden-size wide)")
    p.add_argument("--hidden-size", type=positive_int, default=None,
                   help="the core's width, for --model other than fwm and lstm (default: 256, "
                        "the FWM model's LSTM; memory.size_for_budget gives the width at a "
                        "parameter count)")
    p.add_argument("--n-heads", type=positive_int, default=None,
                   help="heads of a fast-weight core (linear-transformer, delta-net, "
                        "gated-delta-net; default: the core's)")
    p.add_argument("--mode", choices=["qa", "lm"], default="qa",
                   help="loss at the answers only (qa) or at every token (lm)")
    p.add_argument("--steps", type=positive_int, default=60_000,
                   help="training steps (segments of --batch-size x --bptt tokens) in all")
    add_budget_options(p, "the test stream at batch size 1, test.json")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="training rows (global: split over torchrun processes)")
    p.add_argument("--bptt", type=positive_int, default=200, help="tokens per training segment")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--eval-every", type=positive_int, default=1000,
                   help="steps between validations")
    p.add_argument("--eval-batches", type=positive_int, default=None,
                   help="validate on the first N segments of the validation stream only (a "
                        "quick look for smoke runs; default: the whole stream)")
    p.add_argument("--n-reads", type=int, default=3, choices=[1, 2, 3], help="N_r (appendix E)")
    p.add_argument("--concat-keys", action="store_true", help="appendix E: keys [k1; k2]")
    p.add_argument("--fwm-settings", choices=list(MODEL_SETTINGS), default="paper",
                   help="the FWM's equations: the paper's, or the authors' catbAbI cell "
                        "(write-strength bias 1, update scaled by 1/d_FWM, linear first read "
                        "key, their initialisation and a Xavier-normal decoder without bias)")
    p.add_argument("--per-task", action="store_true", help="also print the per-task table")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initialisation and of the training stream's order")
    add_machine_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    later = eval_only_command("train_catbabi.py", argv)
    if args.model != "fwm" and args.fwm_settings != "paper":
        p.error(f"--fwm-settings is an option of the FWM; --model {args.model} has no FWM")
    if args.hidden_size is not None and args.model in ("fwm", "lstm"):
        hint = " (--model lstm-core is an LSTM core of that width)" if args.model == "lstm" else ""
        p.error(f"--hidden-size sizes the core models; --model {args.model} is the paper's, "
                f"at its sizes{hint}")
    if args.n_heads is not None and (args.model not in CORE_MODELS or memory.core_spec(
            CORE_MODELS[args.model]).config is not memory.FastWeightConfig):
        p.error(f"--n-heads is an option of the fast-weight cores; --model {args.model} has "
                f"no heads")
    apply_machine_options(p, args)
    device = init_from_env(args.device)  # joins the process group under torchrun
    rank, world = rank_and_world()
    torch.manual_seed(args.seed)
    try:
        stories = {split: load_split(split, args.data_dir, verify=not args.no_verify)
                   for split in ("train", "valid", "test")}
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    vocab = Vocabulary.from_stories(*stories.values())
    data = {split: EncodedStories(s, vocab) for split, s in stories.items()}
    if args.model == "fwm":
        model = FWMModel(len(vocab), n_reads=args.n_reads,
                         key_mode="concat" if args.concat_keys else "outer",
                         settings=args.fwm_settings)
    elif args.model == "lstm":
        model = LSTMModel(len(vocab))
    else:
        options = {} if args.n_heads is None else {"n_heads": args.n_heads}
        try:
            model = CoreModel(len(vocab), CORE_MODELS[args.model],
                              hidden_size=args.hidden_size or 256, **options)
        except ValueError as err:
            p.error(f"--model {args.model}: {err}")
    try:
        config = TrainConfig(mode=args.mode, batch_size=args.batch_size, bptt=args.bptt,
                             lr=args.lr, steps=args.steps, eval_every=args.eval_every,
                             valid_batches=args.eval_batches, seed=args.seed)
        # a run dir with a checkpoint is resumed: refuse other settings before anything is
        # written (config.json keeps describing the run it holds)
        check_resumable(args.run_dir, model, config, vocab.fingerprint())
    except ValueError as err:
        p.error(str(err))
    best_path = os.path.join(args.run_dir, "best.pt")
    if args.eval_only and not os.path.exists(best_path):
        p.error(f"--eval-only evaluates {best_path}, which does not exist: train the run first "
                f"(the same command without --eval-only)")
    n_params = sum(p.numel() for p in model.parameters())
    budget = Budget.from_minutes(args.minutes, start=started)
    if not args.eval_only:
        os.makedirs(args.run_dir, exist_ok=True)
        log = None
        if rank == 0:
            with open(os.path.join(args.run_dir, "config.json"), "w") as f:
                json.dump({"args": vars(args), "train": config.__dict__, "processes": world,
                           "parameters": n_params}, f, indent=2)
            print(f"{args.model} on catbAbI ({args.mode} mode): {n_params:,} parameters, "
                  f"{torch.get_num_threads()} threads, {world} process(es); run dir "
                  f"{args.run_dir}", flush=True)
            log = RunLogger(args.run_dir)
        with stops_as_exit_codes(args.run_dir):
            try:
                train(model, data["train"], data["valid"], config, args.run_dir, device=device,
                      budget=budget, progress=not args.no_progress, log=log,
                      vocabulary=vocab.fingerprint())
            finally:
                if log is not None:
                    log.close()
    shutdown()  # every process at once; the test evaluation needs no process group
    if rank != 0:  # the test evaluation runs once, in process 0
        return {}
    mode = final_evaluation_mode(args)
    if mode != "never" and not os.path.exists(best_path):
        print(f"no validated model ({best_path}) to test: the budget ended before the first "
              f"validation. Give more --minutes (the same command resumes)", flush=True)
        return {}
    with evaluation_stops(args.run_dir, later):
        return final_evaluation(model, data["test"], args, device, budget, mode, later)


def final_evaluation(model, test_data, args, device, budget, mode: str, later: str) -> dict:
    """The best model on the test stream at batch size 1 (test.json), if ``mode`` and the
    budget let it run."""
    total = evaluation_batches(test_data, 1, args.bptt)
    if not final_evaluation_fits(
            mode, budget, lambda: estimate_seconds(
                lambda k: evaluate(model, test_data, 1, args.bptt, device, max_batches=k),
                probe=10, total=total),
            f"the test evaluation ({total:,} segments at batch size 1)", later):
        return {}
    best = torch_load_checkpoint(os.path.join(args.run_dir, "best.pt"), map_location=device)
    model.load_state_dict(best["model"])
    test = evaluate(model, test_data, batch_size=1, bptt=args.bptt, device=device,
                    progress=None if args.no_progress else "test (batch size 1)")
    result = {"best_step": best["step"], "valid": best["valid"], "test": test.to_dict()}
    with open(os.path.join(args.run_dir, "test.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"test accuracy {test.accuracy:.4f}  perplexity {test.perplexity:.4f}  "
          f"({test.answers} answers, best step {best['step']})")
    if args.per_task:
        for task, m in sorted(test.per_task.items()):
            print(f"task {task:>2}: accuracy {m['accuracy']:.4f}  perplexity "
                  f"{m['perplexity']:.3f}")
    return result


if __name__ == "__main__":
    main()
