"""Train an FWM or LSTM agent on MetroPOMDP with RecurrentA2C (the paper's figure 5 setting).

Examples::

    # the paper's FWM agent (LSTM 32, FWM 16), 10 minutes on CPU
    python scripts/train_agent.py --core fwm --minutes 10 --run-dir runs/fwm
    # an LSTM-512 baseline for the same wall time
    python scripts/train_agent.py --core lstm --hidden 512 --minutes 10 --run-dir runs/lstm512
    # continue a run (same curve, same checkpoint file)
    python scripts/train_agent.py --resume runs/fwm --minutes 10

Every ``--eval-every`` updates the policy is evaluated on the 600 training graphs and on the 600
held-out test graphs (one 30-step episode each). Logs go to ``RUN_DIR/progress.csv`` and
TensorBoard (``RUN_DIR/tb``); the model is checkpointed atomically to ``RUN_DIR/model.zip``
every ``--checkpoint-every`` updates, on Ctrl-C and at the end; ``RUN_DIR/final.json`` holds
the final evaluation. ``scripts/plot_training.py`` draws the curves.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import time

import torch
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import HumanOutputFormat, Logger, make_output_format

from agents import allocator
from agents.a2c import PAPER_N_ENVS, PAPER_PRESET, RecurrentA2C
from agents.callbacks import (
    AppendingCSVOutputFormat,
    AtomicCheckpoint,
    EntropySchedule,
    HeldOutEvalCallback,
    TqdmStream,
    WallClockLimit,
)
from agents.vec_env import make_metro_vec_env


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run-dir", default=None,
                   help="folder for logs and the checkpoint (default: runs/<core><hidden>-s<seed>)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from RUN_DIR/model.zip (its settings are "
                        "kept; --minutes/--timesteps give the additional budget)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an existing --run-dir (its checkpoint and logs are "
                        "deleted)")
    p.add_argument("--core", choices=["fwm", "lstm"], default="fwm", help="recurrent core")
    p.add_argument("--hidden", type=int, default=32, help="LSTM width (paper: FWM 32; LSTM "
                   "baselines 512 ... 4096)")
    p.add_argument("--d-fwm", type=int, default=16, help="FWM size d_FWM")
    p.add_argument("--net-arch", type=int, nargs="*", default=[64, 64],
                   help="actor and critic MLP widths on the core's output (SB3's net_arch; none "
                        "given: linear heads, which learn much more slowly, see docs/results.md)")
    p.add_argument("--read-init", choices=["default", "zeros"], default="default",
                   help="initial W_o of the FWM's read output h + W_o n: PyTorch's default "
                        "Linear initialisation (the paper does not say) or zeros (the agent "
                        "starts as its LSTM; no difference in 60 minutes, docs/results.md)")
    p.add_argument("--lr", type=float, default=PAPER_PRESET["learning_rate"], help="Adam lr")
    p.add_argument("--ent-coef", type=float, default=PAPER_PRESET["ent_coef"],
                   help="entropy coefficient")
    p.add_argument("--ent-coef-final", type=float, default=None,
                   help="anneal the entropy coefficient linearly from --ent-coef to this value "
                        "over the updates given by --ent-anneal (default: constant)")
    p.add_argument("--ent-anneal", type=int, nargs=2, metavar=("BEGIN", "FINISH"),
                   default=None, help="updates between which --ent-coef-final is approached")
    p.add_argument("--gae-lambda", type=float, default=PAPER_PRESET["gae_lambda"],
                   help="GAE lambda (the paper: 1.0, returns to the episode end)")
    p.add_argument("--vf-coef", type=float, default=PAPER_PRESET["vf_coef"],
                   help="value-loss coefficient")
    p.add_argument("--normalize-advantage", action="store_true",
                   help="standardise advantages per update (not in the paper)")
    p.add_argument("--n-envs", type=int, default=PAPER_N_ENVS,
                   help="parallel envs; env i plays graph i unless --random-graph (paper: 600)")
    p.add_argument("--random-graph", action="store_true",
                   help="draw each training episode's graph uniformly from the training set "
                        "instead of env i on graph i (so fewer than 600 envs still see all the "
                        "graphs; not in the paper)")
    p.add_argument("--env-id", default="MetroPOMDP-v0", help="training env id")
    p.add_argument("--test-env-id", default="MetroPOMDP-Test-v0", help="held-out env id")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument("--timesteps", type=int, default=None,
                   help="env-step budget (default: unlimited when --minutes is given)")
    p.add_argument("--eval-every", type=int, default=50, help="updates between evaluations")
    p.add_argument("--eval-envs", type=int, default=600,
                   help="graphs per evaluation set (600: all of them, one episode each)")
    p.add_argument("--checkpoint-every", type=int, default=200, help="updates between checkpoints")
    p.add_argument("--log-every", type=int, default=10, help="updates between log rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true",
                   help="skip RUN_DIR/curve.png and RUN_DIR/graphs.png at the end")
    allocator.add_keep_memory_flag(p)
    args = p.parse_args(argv)
    if args.minutes is None and args.timesteps is None:
        p.error("give a budget: --minutes and/or --timesteps")
    if args.minutes is not None and not args.minutes > 0:
        p.error(f"--minutes must be positive, got {args.minutes}")
    if args.timesteps is not None and args.timesteps < 1:
        p.error(f"--timesteps must be positive, got {args.timesteps}")
    if not 0.0 <= args.gae_lambda <= 1.0:
        p.error(f"--gae-lambda must be in [0, 1], got {args.gae_lambda}")
    if not args.vf_coef >= 0:
        p.error(f"--vf-coef must be non-negative, got {args.vf_coef}")
    if (args.ent_coef_final is None) != (args.ent_anneal is None):
        p.error("--ent-coef-final and --ent-anneal BEGIN FINISH go together")
    if args.ent_anneal is not None:
        if not args.ent_coef_final >= 0:
            p.error(f"--ent-coef-final must be non-negative, got {args.ent_coef_final}")
        begin, finish = args.ent_anneal
        if not 0 <= begin < finish:
            p.error(f"--ent-anneal needs 0 <= BEGIN < FINISH updates, got {begin} {finish}")
    return args


def make_logger(run_dir: str, progress_bar: bool) -> Logger:
    # with a progress bar, the stdout tables go through tqdm.write, above the bar
    stdout = HumanOutputFormat(TqdmStream()) if progress_bar else make_output_format("stdout",
                                                                                     run_dir)
    formats = [stdout,
               AppendingCSVOutputFormat(os.path.join(run_dir, "progress.csv")),
               make_output_format("tensorboard", os.path.join(run_dir, "tb"))]
    return Logger(folder=run_dir, output_formats=formats)


def main(argv=None) -> dict:
    args = parse_args(argv)
    allocator.from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = args.resume or args.run_dir or f"runs/{args.core}{args.hidden}-s{args.seed}"
    os.makedirs(run_dir, exist_ok=True)
    ckpt = os.path.join(run_dir, "model.zip")
    config_path = os.path.join(run_dir, "config.json")
    if args.resume:
        if not os.path.exists(ckpt):
            raise FileNotFoundError(f"--resume {run_dir}: no checkpoint {ckpt}")
        with open(config_path) as f:
            config = json.load(f)
    else:
        previous = [os.path.join(run_dir, name) for name in ("model.zip", "progress.csv",
                                                              "final.json")]
        if any(os.path.exists(f) for f in previous[:2]) and not args.overwrite:
            raise FileExistsError(f"{run_dir} holds a run; use --resume {run_dir}, --overwrite "
                                  f"or another --run-dir")
        if args.overwrite:
            for path in previous:
                if os.path.exists(path):
                    os.remove(path)
            shutil.rmtree(os.path.join(run_dir, "tb"), ignore_errors=True)
        config = {"core": args.core, "hidden": args.hidden, "d_fwm": args.d_fwm,
                  "net_arch": args.net_arch, "read_init": args.read_init,
                  "n_envs": args.n_envs, "random_graph": args.random_graph,
                  "env_id": args.env_id,
                  "test_env_id": args.test_env_id, "seed": args.seed,
                  "preset": {**PAPER_PRESET, "learning_rate": args.lr,
                             "ent_coef": args.ent_coef, "gae_lambda": args.gae_lambda,
                             "vf_coef": args.vf_coef,
                             "normalize_advantage": args.normalize_advantage}}
        if args.ent_anneal is not None:
            config["ent_schedule"] = {"start": args.ent_coef, "end": args.ent_coef_final,
                                      "begin": args.ent_anneal[0],
                                      "finish": args.ent_anneal[1]}
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)

    env = make_metro_vec_env(config["env_id"], num_envs=config["n_envs"],
                             random_graph=config.get("random_graph", False))
    eval_envs = {"train": make_metro_vec_env(config["env_id"], num_envs=args.eval_envs),
                 "test": make_metro_vec_env(config["test_env_id"], num_envs=args.eval_envs)}
    if args.resume:
        model = RecurrentA2C.load(ckpt, env=env, device=args.device)
        print(f"resumed {ckpt} at {model.num_timesteps} steps, {model._n_updates} updates")
    else:
        policy_kwargs = {"core": config["core"], "hidden_size": config["hidden"],
                         "net_arch": config["net_arch"]}
        if config["core"] == "fwm":
            policy_kwargs["d_fwm"] = config["d_fwm"]
            policy_kwargs["core_kwargs"] = {
                "zero_init_output": config.get("read_init", "default") == "zeros"}
        model = RecurrentA2C("RecurrentActorCriticPolicy", env, policy_kwargs=policy_kwargs,
                             seed=config["seed"], device=args.device, **config["preset"])
    wall_clock_bar = args.minutes is not None and not args.no_progress
    model.set_logger(make_logger(run_dir, progress_bar=wall_clock_bar))
    n_params = sum(p.numel() for p in model.policy.parameters())
    print(f"{config['core']}-{config['hidden']}: {n_params:,} parameters on {model.device}, "
          f"{torch.get_num_threads()} threads", flush=True)

    evaluator = HeldOutEvalCallback(eval_envs, eval_every=args.eval_every, verbose=1)
    callbacks = [evaluator, AtomicCheckpoint(ckpt, every=args.checkpoint_every)]
    if "ent_schedule" in config:
        callbacks.insert(0, EntropySchedule(**config["ent_schedule"]))
    if args.minutes is not None:
        callbacks.append(WallClockLimit(args.minutes * 60, progress=wall_clock_bar))
    budget = args.timesteps if args.timesteps is not None else 10**15
    start, start_steps = time.monotonic(), model.num_timesteps
    interrupted = False
    try:
        model.learn(budget, callback=CallbackList(callbacks), log_interval=args.log_every,
                    reset_num_timesteps=False,
                    progress_bar=args.minutes is None and not args.no_progress)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: saving a resumable checkpoint", flush=True)
    except FloatingPointError as err:
        print(f"stopped: {err}\nthe last good checkpoint is {ckpt}", file=sys.stderr)
        raise SystemExit(1) from None
    wall = time.monotonic() - start
    model.save_atomic(ckpt)
    if interrupted:
        raise SystemExit(130)
    final = evaluator.evaluate()
    model.logger.dump(model.num_timesteps)
    steps = model.num_timesteps - start_steps
    result = {"core": config["core"], "hidden": config["hidden"], "parameters": n_params,
              "seed": config["seed"], "updates": model._n_updates,
              "timesteps": model.num_timesteps, "wall_s_this_session": round(wall, 1),
              "env_steps_per_s_incl_eval": round(steps / wall, 1),
              "train_reward": final["train"], "test_reward": final["test"],
              "device": str(model.device), "threads": torch.get_num_threads()}
    with open(os.path.join(run_dir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    if not args.no_plots:
        from plot_graphs import save_graph_grid
        from plot_training import plot_runs

        curve = plot_runs([run_dir], os.path.join(run_dir, "curve.png"), baseline_episodes=1)
        graphs = save_graph_grid("train", 8, pathlib.Path(run_dir) / "graphs.png",
                                 seed=config["seed"])
        print(f"wrote {curve} and {graphs}")
    return result


if __name__ == "__main__":
    main()
