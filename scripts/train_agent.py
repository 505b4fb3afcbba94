"""Train an FWM or LSTM agent on MetroPOMDP with RecurrentA2C (the paper's figure 5 setting).

Examples::

    # the paper's FWM agent (LSTM 32, FWM 16), 10 minutes on CPU
    python scripts/train_agent.py --core fwm --minutes 10 --run-dir runs/fwm
    # an LSTM-512 baseline for the same wall time
    python scripts/train_agent.py --core lstm --hidden 512 --minutes 10 --run-dir runs/lstm512
    # continue a run (same curve, same checkpoint file)
    python scripts/train_agent.py --resume runs/fwm --minutes 10
    # any registered Gymnasium id (SB3's vector env where it has no native MetroPOMDP one)
    python scripts/train_agent.py --core lstm --env-id CartPole-v1 --n-envs 8 --timesteps 50000

Every ``--eval-every`` updates the policy is evaluated on the 600 training graphs and on the 600
held-out test graphs (one 30-step episode each). Logs go to ``RUN_DIR/progress.csv`` and
TensorBoard (``RUN_DIR/tb``); the model is checkpointed atomically to ``RUN_DIR/model.zip``
every ``--checkpoint-every`` updates, on Ctrl-C and at the end; ``RUN_DIR/final.json`` holds
the final evaluation. ``scripts/plot_training.py`` draws the curves.

With ``--resume RUN_DIR`` the run's settings come from ``RUN_DIR/config.json``; only the flags
in ``RESUMABLE`` (the budget, the evaluation, checkpoint and log cadences, device, threads and
output switches) may be given, and a setting flag that contradicts the run is refused. The
cadences, device, threads and output switches the run was started with are kept too
(``RUN_DIR/options.json``) unless given again; the budget is always given anew.

One CPU thread is the default: these agents' matrix products are small, and with more threads
than free cores PyTorch's threads wait on each other. On a 2-core machine with other work
running, ten A2C updates of the FWM agent ran at 2,745 env-steps/s on PyTorch's default 2
threads against 65,992 on one (24x).

Ctrl-C or SIGTERM (a cluster scheduler's stop) ends the current update, saves a resumable
``model.zip`` and exits 130 or 143.
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
from stable_baselines3.common.logger import (
    HumanOutputFormat,
    Logger,
    make_output_format,
)

from agents.a2c import PAPER_N_ENVS, PAPER_PRESET
from agents.callbacks import (
    AppendingCSVOutputFormat,
    AtomicCheckpoint,
    EntropySchedule,
    EveryNth,
    HeldOutEvalCallback,
    TqdmStream,
    WallClockLimit,
)
from agents.plots import plot_runs
from agents.policies import CORES
from agents.ppo import METRO_PRESET
from agents.runs import ALGORITHMS, RunConfig, load_model
from agents.vec_env import make_vec_env
from metro_pomdp import REGISTERED, registered_config
from metro_pomdp.render import save_graph_grid
from training.atomic import sigterm_as_interrupt
from training.cli import (
    HelpFormatter,
    add_machine_options,
    apply_machine_options,
    check_eval_envs,
    interrupt_exit_code,
    interrupt_name,
    non_negative_float,
    positive_float,
)
from training.distributed import init_from_env, rank_and_world, shutdown

#: Flags that may change when a run is resumed (``dest`` names); every other flag is a setting of
#: the run, kept in its config.json.
RESUMABLE = ("resume", "minutes", "timesteps", "eval_every", "eval_envs", "checkpoint_every",
             "log_every", "print_every", "device", "threads", "no_progress", "no_plots",
             "no_keep_memory", "env_on_device")
#: The flags of ``RESUMABLE`` a resumed run keeps from ``options.json`` unless given again (the
#: budget, ``--minutes`` / ``--timesteps``, is always the resumed call's own).
KEPT_OPTIONS = tuple(n for n in RESUMABLE if n not in ("resume", "minutes", "timesteps"))
#: The file of a run folder that holds the kept options.
OPTIONS_FILE = "options.json"
#: The budget meaning "no step limit" (``--minutes`` alone): more steps than any run makes.
NO_STEP_LIMIT = 10**15


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter,
                                epilog="Flags that --resume accepts: " + ", ".join(
                                    "--" + d.replace("_", "-") for d in RESUMABLE[1:]) +
                                       "; the others are the run's settings.")
    p.add_argument("--run-dir", default=None,
                   help="folder for logs and the checkpoint (default: runs/<core><hidden>-s<seed>)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from RUN_DIR/model.zip (its settings are "
                        "kept; --minutes/--timesteps give the additional budget)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an existing --run-dir (its checkpoint and logs are "
                        "deleted)")
    p.add_argument("--core", choices=list(CORES), default="fwm", help="recurrent core")
    p.add_argument("--hidden", type=int, default=32, help="the core's width (paper: FWM 32; "
                   "LSTM baselines 512 ... 4096)")
    p.add_argument("--d-fwm", type=int, default=16, help="FWM size d_FWM")
    p.add_argument("--net-arch", type=int, nargs="*", default=[64, 64],
                   help="actor and critic MLP widths on the core's output (SB3's net_arch; none "
                        "given: the paper's linear heads, which learn much more slowly)")
    p.add_argument("--read-init", choices=["default", "zeros"], default="default",
                   help="initial W_o of the FWM's read output h + W_o n: PyTorch's default "
                        "Linear initialisation (the paper does not say) or zeros (the agent "
                        "starts as its LSTM)")
    p.add_argument("--fwm-settings", choices=["paper", "authors-write", "authors-rl"],
                   default="authors-write",
                   help="the FWM's equations: the paper's; the authors' write (write-strength "
                        "bias 1, update scaled by 1/d_FWM) with the paper's squashed read keys; "
                        "or the authors' RL cell (their write, linear read keys, their "
                        "initialisation)")
    p.add_argument("--algo", choices=list(ALGORITHMS), default="a2c",
                   help="RecurrentA2C (the paper's) or RecurrentPPO (with --n-epochs, "
                        "--batch-size and --clip-range; its other defaults: "
                        "agents.ppo.METRO_PRESET; its update count, as SB3's, counts epochs, "
                        "and --ent-anneal and the logs use it)")
    p.add_argument("--n-epochs", type=int, default=None,
                   help=f"PPO: passes over each rollout (default: "
                        f"{METRO_PRESET['n_epochs']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"PPO: env steps per minibatch, whole 30-step episodes (default: "
                        f"{METRO_PRESET['batch_size']}, 100 episodes)")
    p.add_argument("--clip-range", type=float, default=None,
                   help=f"PPO: clipping of the probability ratio (default: "
                        f"{METRO_PRESET['clip_range']})")
    p.add_argument("--lr", type=positive_float, default=PAPER_PRESET["learning_rate"],
                   help="Adam lr")
    p.add_argument("--ent-coef", type=non_negative_float, default=PAPER_PRESET["ent_coef"],
                   help="entropy coefficient")
    p.add_argument("--ent-coef-final", type=non_negative_float, default=None,
                   help="anneal the entropy coefficient linearly from --ent-coef to this value "
                        "over the updates given by --ent-anneal (default: constant)")
    p.add_argument("--ent-anneal", type=int, nargs=2, metavar=("BEGIN", "FINISH"),
                   default=None, help="updates between which --ent-coef-final is approached")
    p.add_argument("--gae-lambda", type=float, default=PAPER_PRESET["gae_lambda"],
                   help="GAE lambda (the paper: 1.0, returns to the episode end)")
    p.add_argument("--vf-coef", type=float, default=PAPER_PRESET["vf_coef"],
                   help="value-loss coefficient")
    p.add_argument("--normalize-advantage", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="standardise advantages per update (PPO: per minibatch); not in the "
                        "paper, and off by default for both algorithms (SB3's PPO has it on; "
                        "on MetroPOMDP it kept PPO's FWM agent on the plateau)")
    p.add_argument("--n-envs", type=int, default=PAPER_N_ENVS,
                   help="parallel envs; env i plays graph i unless --random-graph (paper: 600)")
    p.add_argument("--random-graph", action="store_true",
                   help="draw each training episode's graph uniformly from the training set "
                        "instead of env i on graph i (so fewer than 600 envs still see all the "
                        "graphs; not in the paper; MetroPOMDP ids only)")
    p.add_argument("--env-id", default="MetroPOMDP-v0",
                   help="training env: any registered Gymnasium id")
    p.add_argument("--test-env-id", default=None,
                   help="held-out env (default: the test variant of a MetroPOMDP --env-id, e.g. "
                        "MetroPOMDP-10x4-Test-v0 for MetroPOMDP-10x4-v0; the same id, other "
                        "episodes, for any other env)")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="wall-clock budget of the training (the final evaluation, one episode "
                        "per --eval-envs env, takes seconds)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="env-step budget (default: unlimited when --minutes is given)")
    p.add_argument("--eval-every", type=int, default=50,
                   help="rollouts (A2C updates) between evaluations")
    p.add_argument("--eval-envs", type=int, default=600,
                   help="envs per evaluation set, one episode each (a MetroPOMDP set: env i "
                        "plays graph i, at most the set's 600 graphs)")
    p.add_argument("--checkpoint-every", type=int, default=200,
                   help="rollouts (A2C updates) between checkpoints")
    p.add_argument("--log-every", type=int, default=10,
                   help="rollouts between rows of progress.csv and TensorBoard")
    p.add_argument("--print-every", type=int, default=100,
                   help="rollouts between the tables printed on the terminal (a multiple of "
                        "--log-every)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model and the envs")
    add_machine_options(p, threads=1, threads_help=(
        "torch CPU threads; these agents' small matrix products run fastest on one (on a "
        "busy 2-core machine 2 threads were 24x slower than 1)"))
    p.add_argument("--env-on-device", action="store_true",
                   help="step the training envs as torch tensors on --device (MetroPOMDP ids): "
                        "the rollout never leaves the device; the same numbers as the numpy "
                        "envs, faster only where the device is a GPU (evaluations stay numpy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true",
                   help="skip RUN_DIR/curve.png and RUN_DIR/graphs.png at the end")
    return p


def given_flags(argv) -> set[str]:
    """The ``dest`` of every flag that ``argv`` names explicitly (defaults left out): the
    script's parser with every default suppressed, so only given flags reach the namespace."""
    probe = build_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def test_env_id_for(env_id: str) -> str:
    """The held-out variant of a training env id: ``MetroPOMDP-...-v0`` ->
    ``MetroPOMDP-...-Test-v0`` where that id is registered; otherwise ``env_id`` itself."""
    if env_id in REGISTERED and "-Test-" not in env_id:
        name, _, version = env_id.rpartition("-")
        candidate = f"{name}-Test-{version}"
        if candidate in REGISTERED:
            return candidate
    return env_id


def parse_args(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``argv`` parsed by ``p`` (:func:`build_parser`) and checked; a bad value exits through
    ``p.error``."""
    args = p.parse_args(argv)
    if args.minutes is None and args.timesteps is None:
        p.error("give a budget: --minutes and/or --timesteps")
    if args.timesteps is not None and args.timesteps < 1:
        p.error(f"--timesteps must be positive, got {args.timesteps}")
    for name in ("eval_every", "checkpoint_every", "log_every", "print_every",
                 "n_envs", "hidden", "d_fwm"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got "
                    f"{getattr(args, name)}")
    if args.print_every % args.log_every:
        p.error(f"--print-every must be a multiple of --log-every, got {args.print_every} and "
                f"{args.log_every}")
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
    if args.resume and (args.overwrite or args.run_dir):
        p.error("--resume RUN_DIR names the run; it takes neither --run-dir nor --overwrite")
    args.given = given_flags(argv)
    if not args.resume and args.algo != "ppo":
        ppo_only = sorted({"n_epochs", "batch_size", "clip_range"} & args.given)
        if ppo_only:
            p.error(f"{', '.join('--' + d.replace('_', '-') for d in ppo_only)}: options of "
                    f"--algo ppo, not of --algo {args.algo}")
    for name in ("n_epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got "
                    f"{getattr(args, name)}")
    n_steps = PAPER_PRESET["n_steps"]
    if args.batch_size is not None and (args.batch_size % n_steps
                                        or (n_steps * args.n_envs) % args.batch_size):
        p.error(f"--batch-size must be a multiple of the {n_steps}-step rollout (whole "
                f"episodes) that divides the {n_steps} x --n-envs {args.n_envs} = "
                f"{n_steps * args.n_envs} steps of a rollout, got {args.batch_size}")
    if args.clip_range is not None and not args.clip_range > 0:
        p.error(f"--clip-range must be positive, got {args.clip_range}")
    if not args.resume and args.core != "fwm" and "fwm_settings" in args.given:
        p.error(f"--fwm-settings is an option of the FWM core; --core {args.core} has none")
    if args.resume:
        keep_options(p, args)
    args.options = {name: getattr(args, name) for name in KEPT_OPTIONS}
    return args


def keep_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A resumed run takes the cadences, device, threads and output switches it was started
    with (``RUN_DIR/options.json``) for every one of them not given again (runs from before
    the file existed: the defaults)."""
    path = os.path.join(args.resume, OPTIONS_FILE)
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        p.error(f"--resume {args.resume}: {path} is not valid JSON ({err}); delete it (the "
                f"run then resumes with the defaults of its cadence and machine flags, or the "
                f"ones you give)")
    unknown = sorted(set(saved) - set(KEPT_OPTIONS)) if isinstance(saved, dict) else None
    if unknown is None or unknown:
        p.error(f"--resume {args.resume}: {path} is not a train_agent.py options file "
                f"({'unknown ' + ', '.join(unknown) if unknown else 'not a JSON object'}); "
                f"delete it")
    for name, value in saved.items():
        if name not in args.given:
            setattr(args, name, value)


def run_config(args: argparse.Namespace) -> RunConfig:
    """The settings of a run (what config.json holds) from the command line."""
    schedule = None
    if args.ent_anneal is not None:
        schedule = {"start": args.ent_coef, "end": args.ent_coef_final,
                    "begin": args.ent_anneal[0], "finish": args.ent_anneal[1]}
    # PPO: the paper's env settings and the flags' values, with PPO's own on top
    preset = {**PAPER_PRESET, **(METRO_PRESET if args.algo == "ppo" else {}),
              "learning_rate": args.lr, "ent_coef": args.ent_coef,
              "gae_lambda": args.gae_lambda, "vf_coef": args.vf_coef}
    preset.setdefault("normalize_advantage", False)
    for name in ("n_epochs", "batch_size", "clip_range", "normalize_advantage"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    return RunConfig(core=args.core, hidden=args.hidden, d_fwm=args.d_fwm,
                     net_arch=args.net_arch, read_init=args.read_init,
                     fwm_settings=args.fwm_settings, n_envs=args.n_envs,
                     random_graph=args.random_graph, env_id=args.env_id,
                     test_env_id=args.test_env_id or test_env_id_for(args.env_id),
                     seed=args.seed,
                     algo=args.algo, preset=preset, ent_schedule=schedule)


#: Where each setting flag's value lives in config.json.
_CONFIG_KEYS = {"lr": ("preset", "learning_rate"), "ent_coef": ("preset", "ent_coef"),
                "gae_lambda": ("preset", "gae_lambda"), "vf_coef": ("preset", "vf_coef"),
                "normalize_advantage": ("preset", "normalize_advantage"),
                "n_epochs": ("preset", "n_epochs"), "batch_size": ("preset", "batch_size"),
                "clip_range": ("preset", "clip_range"),
                "ent_coef_final": ("ent_schedule",), "ent_anneal": ("ent_schedule",)}


def contradicted(args: argparse.Namespace, saved: RunConfig) -> list[str]:
    """The setting flags given with ``--resume`` whose value differs from the run's, as
    ``--flag VALUE (the run has SAVED)``."""
    new, saved = run_config(args).to_dict(), saved.to_dict()
    out = []
    for dest in sorted(args.given - set(RESUMABLE)):
        keys = _CONFIG_KEYS.get(dest, (dest,))
        mine, theirs = new, saved
        for key in keys:
            mine, theirs = mine.get(key), (theirs or {}).get(key)
        if mine != theirs:
            out.append(f"--{dest.replace('_', '-')} {getattr(args, dest)} (the run has "
                       f"{theirs!r})")
    return out


def make_logger(run_dir: str, progress_bar: bool, print_every: int) -> Logger:
    """SB3's logger: progress.csv and TensorBoard at every dump, the terminal table at every
    ``print_every``-th dump (through ``tqdm.write`` above a running progress bar)."""
    stdout = HumanOutputFormat(TqdmStream()) if progress_bar else make_output_format("stdout",
                                                                                     run_dir)
    formats = [EveryNth(stdout, print_every),
               AppendingCSVOutputFormat(os.path.join(run_dir, "progress.csv")),
               make_output_format("tensorboard", os.path.join(run_dir, "tb"))]
    return Logger(folder=run_dir, output_formats=formats)


def build_envs(config: RunConfig, eval_envs: int, parser: argparse.ArgumentParser,
               env_device: str | None = None):
    """The training VecEnv and the ``{"train", "test"}`` evaluation VecEnvs of a run; a bad
    combination exits through ``parser.error`` before anything is written. Under ``torchrun``
    process r of W trains ``n_envs / W`` of the envs: on the fixed graphs, graphs
    ``[r n_envs / W, (r + 1) n_envs / W)``. ``env_device``: the training envs as torch tensors
    there (``--env-on-device``)."""
    import gymnasium as gym

    rank, world = rank_and_world()
    if config.n_envs % world:
        parser.error(f"--n-envs {config.n_envs} must be divisible by the {world} processes "
                     f"(each trains n_envs / {world} envs)")
    local = config.n_envs // world

    env_id, test_id = config.env_id, config.test_env_id
    for flag, name in (("--env-id", env_id), ("--test-env-id", test_id)):
        try:
            gym.spec(name)
        except gym.error.Error as err:
            parser.error(f"{flag} {name}: {err}")
    train_kwargs = {}
    if world > 1 and not config.random_graph and registered_config(env_id) is not None:
        train_kwargs["graph_offset"] = rank * local
    if config.random_graph:
        if registered_config(env_id) is None:
            parser.error(f"--random-graph draws MetroPOMDP graphs; {env_id} is not a "
                         f"MetroPOMDP id")
        train_kwargs["random_graph"] = True
    if env_device is not None:
        if registered_config(env_id) is None:
            parser.error(f"--env-on-device steps MetroPOMDP envs on a torch device; {env_id} "
                         f"is not a MetroPOMDP id (leave the flag out)")
        train_kwargs["device"] = env_device
    check_eval_envs(parser, eval_envs, env_id, test_id)
    env = make_vec_env(env_id, local, **train_kwargs)
    evals = {"train": make_vec_env(env_id, eval_envs),
             "test": make_vec_env(test_id, eval_envs)}
    train_spaces = (env.observation_space, env.action_space)
    test_spaces = (evals["test"].observation_space, evals["test"].action_space)
    if train_spaces != test_spaces:
        (obs_a, act_a), (obs_b, act_b) = train_spaces, test_spaces
        parser.error(f"--env-id {env_id} and --test-env-id {test_id} have different spaces "
                     f"(observation shapes {obs_a.shape} and {obs_b.shape}, actions {act_a} and "
                     f"{act_b}): one policy cannot act in both; give a --test-env-id of the "
                     f"same family")
    return env, evals


def main(argv=None) -> dict:
    parser = build_parser()
    args = parse_args(parser, argv)
    apply_machine_options(parser, args)
    args.device = init_from_env(args.device)  # joins the process group under torchrun
    rank, world = rank_and_world()
    run_dir = args.resume or args.run_dir or f"runs/{args.core}{args.hidden}-s{args.seed}"
    ckpt = os.path.join(run_dir, "model.zip")
    config_path = os.path.join(run_dir, "config.json")
    if args.resume:
        if not os.path.exists(ckpt):
            parser.error(f"--resume {run_dir}: no checkpoint {ckpt} (a run that stopped before "
                         f"its first checkpoint has nothing to resume: start it again with "
                         f"--run-dir {run_dir})")
        try:
            config = RunConfig.load(config_path)
        except (OSError, ValueError) as err:
            parser.error(f"--resume {run_dir}: {err}")
        wrong = contradicted(args, config)
        if wrong:
            parser.error(f"--resume {run_dir} keeps the run's settings (its config.json); "
                         f"these flags contradict them: {'; '.join(wrong)}. Leave them out, or "
                         f"start a new run with another --run-dir")
    else:
        # a folder holds a run once it has a checkpoint; logs without one are a run that died
        # before its first checkpoint, and a fresh start replaces them
        if os.path.exists(ckpt) and not args.overwrite:
            parser.error(f"{run_dir} holds a run ({ckpt}); use --resume {run_dir}, "
                         f"--overwrite or another --run-dir")
        config = run_config(args)

    env_device = None
    if args.env_on_device:
        from stable_baselines3.common.utils import get_device

        env_device = str(get_device(args.device))  # "auto": where the policy will be
    env, eval_envs = build_envs(config, args.eval_envs, parser, env_device)
    if args.resume:
        try:
            model = load_model(config, ckpt, env=env, device=args.device)
        except ValueError as err:
            parser.error(f"--resume {run_dir}: {err}")
        if rank == 0:
            print(f"resumed {ckpt} at {model.num_timesteps} steps, {model._n_updates} updates")
    else:
        model = config.algorithm("RecurrentActorCriticPolicy", env,
                                 policy_kwargs=config.policy_kwargs(), seed=config.seed,
                                 device=args.device, **config.preset)
        # the model is built: only now does the run dir get its files (from process 0)
        if rank == 0:
            os.makedirs(run_dir, exist_ok=True)
            for name in ("model.zip", "progress.csv", "final.json", "curve.png", "graphs.png"):
                if os.path.exists(os.path.join(run_dir, name)):
                    os.remove(os.path.join(run_dir, name))
            shutil.rmtree(os.path.join(run_dir, "tb"), ignore_errors=True)
            config.save(config_path)
    if rank == 0:
        with open(os.path.join(run_dir, OPTIONS_FILE), "w") as f:
            json.dump(args.options, f, indent=2)
    if rank > 0:  # the same parameters everywhere; its own episodes and action samples
        model.env.seed(config.seed + rank)
        torch.manual_seed(config.seed + rank)
    wall_clock_bar = args.minutes is not None and not args.no_progress and rank == 0
    if rank == 0:  # process 0 logs, evaluates and writes checkpoints
        model.set_logger(make_logger(run_dir, wall_clock_bar,
                                     args.print_every // args.log_every))
    else:
        model.set_logger(Logger(folder=None, output_formats=[]))
    n_params = sum(p.numel() for p in model.policy.parameters())
    if rank == 0:
        print(f"{config.core}-{config.hidden} on {config.env_id}: {n_params:,} parameters on "
              f"{model.device}, {torch.get_num_threads()} threads, {world} process(es); run "
              f"dir {run_dir}", flush=True)

    evaluator = HeldOutEvalCallback(eval_envs, eval_every=args.eval_every, verbose=1)
    callbacks = [evaluator, AtomicCheckpoint(ckpt, every=args.checkpoint_every)] if rank == 0 \
        else []
    if config.ent_schedule is not None:
        callbacks.insert(0, EntropySchedule(**config.ent_schedule))
    if args.minutes is not None:
        callbacks.append(WallClockLimit(args.minutes * 60, progress=wall_clock_bar))
    # env steps per process: --timesteps counts all of them
    budget = -(-args.timesteps // world) if args.timesteps is not None else NO_STEP_LIMIT
    start, start_steps = time.monotonic(), model.num_timesteps
    interrupted = None
    try:
        with sigterm_as_interrupt():  # SIGTERM stops the run as Ctrl-C does
            model.learn(budget, callback=CallbackList(callbacks), log_interval=args.log_every,
                        reset_num_timesteps=False,
                        progress_bar=args.minutes is None and not args.no_progress and rank == 0)
    except KeyboardInterrupt as err:
        interrupted = err
        print(f"\n{interrupt_name(err)}: saving a resumable checkpoint", flush=True)
    except FloatingPointError as err:
        print(f"stopped: {err}\nthe last good checkpoint is {ckpt}", file=sys.stderr)
        raise SystemExit(1) from None
    wall = time.monotonic() - start
    shutdown()  # every process at once; what follows is process 0's alone
    if rank > 0:
        if interrupted is not None:
            raise SystemExit(interrupt_exit_code(interrupted))
        return {}
    model.save_atomic(ckpt)
    if interrupted is not None:
        print(f"{ckpt} is resumable: python scripts/train_agent.py --resume {run_dir} "
              f"--minutes M", file=sys.stderr)
        raise SystemExit(interrupt_exit_code(interrupted))
    final = evaluator.evaluate()
    model.logger.dump(model.num_timesteps)
    steps = (model.num_timesteps - start_steps) * world
    result = {"core": config.core, "hidden": config.hidden, "parameters": n_params,
              "env_id": config.env_id, "test_env_id": config.test_env_id,
              "seed": config.seed, "updates": model._n_updates,
              "timesteps": model.num_timesteps * world,
              # this invocation's training (a resumed run: since the resume), evaluations
              # during training included, the final one not
              "learn_wall_s": round(wall, 1),
              "env_steps_per_s_incl_eval": round(steps / wall, 1),
              "train_reward": final["train"], "test_reward": final["test"],
              "device": str(model.device), "threads": torch.get_num_threads(),
              "processes": world}
    with open(os.path.join(run_dir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    if not args.no_plots:
        curve = plot_runs([run_dir], os.path.join(run_dir, "curve.png"))
        print(f"wrote {curve}")
        metro = registered_config(config.env_id)
        if metro is not None:
            graphs = save_graph_grid("train", 8, pathlib.Path(run_dir) / "graphs.png",
                                     seed=config.seed, n_states=metro.n_states,
                                     n_actions=metro.n_actions)
            print(f"wrote {graphs}")
    return result


if __name__ == "__main__":
    main()
