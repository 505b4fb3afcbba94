"""Run every memory core on one benchmark at the FWM's parameter count, a few runs at a time,
then compare them (``scripts/compare_cores.py``): the runs behind docs/results.md's "Memory
cores compared".

Examples::

    # MetroPOMDP, the CPU recipe, 40 minutes per run, seeds 0 and 1, two runs at a time
    python benchmarks/run_cores.py metro --seeds 0 1 --minutes 40
    # catbAbI (QA mode, batch 32), 60 minutes of training per run, then the test at batch 1
    python benchmarks/run_cores.py catbabi --seeds 0 --minutes 60 --no-verify
    # what would run, and each core's width and parameter count
    python benchmarks/run_cores.py catbabi --dry-run

Each core's width is the one whose whole model (the agent with its 64-64 heads; catbAbI's
embedding -> core -> decoder) has the parameter count nearest the FWM's (``memory.nearest_width``):
the FWM-32-16 agent on MetroPOMDP, the paper's FWM model on catbAbI. Every run uses one torch
thread (``--jobs`` runs at a time: no more than the machine's cores, or the runs slow each other
unevenly). Runs go to ``OUT/<core>-s<seed>`` with their log beside them (``.log``). A run whose
result exists (MetroPOMDP: evaluation.json; catbAbI: test.json) is not run again; an unfinished
one is resumed by the trainer from its checkpoint, with a fresh ``--minutes`` (the log says
so). Ctrl-C stops every run at the end of its step with a resumable checkpoint; the same
command goes on.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import memory
from qa.models import CoreModel, FWMModel, core_model_name
from training.cli import HelpFormatter, add_data_options, positive_float, positive_int

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE_ORDER = ("fwm", "lstm", "gru", "linear-transformer", "delta-net", "gated-delta-net")
#: every registered core: the comparison's in its tables' order, then any registered later
CORES = sorted(memory.core_names(), key=lambda core: (
    TABLE_ORDER.index(core) if core in TABLE_ORDER else len(TABLE_ORDER)))
#: the MetroPOMDP recipe (A2C, 150 envs on random graphs, entropy 0.3; 64-64 heads by default)
METRO_RECIPE = ["--n-envs", "150", "--random-graph", "--ent-coef", "0.3"]


def metro_widths(cores: list[str]) -> tuple[int, dict[str, tuple[int, int]]]:
    """The FWM-32-16 agent's parameter count, and core -> (width, parameters) of the MetroPOMDP
    agent nearest it (the FWM itself at 32)."""
    import gymnasium as gym

    import metro_pomdp  # noqa: F401  (registers the env)
    from agents.policies import RecurrentActorCriticPolicy

    env = gym.make("MetroPOMDP-v0")

    def count(core: str, hidden: int) -> int:
        policy = RecurrentActorCriticPolicy(env.observation_space, env.action_space,
                                            lambda _: 1e-3, core=core, hidden_size=hidden,
                                            net_arch=[64, 64])
        return memory.parameter_count(policy)

    budget = count("fwm", 32)
    widths = {}
    for core in cores:
        hidden = 32 if core == "fwm" else memory.nearest_width(
            lambda h, core=core: count(core, h), budget, high=1024)
        widths[core] = (hidden, count(core, hidden))
    return budget, widths


def catbabi_widths(cores: list[str], data_dir: str | None,
                   verify: bool) -> tuple[int, dict[str, tuple[int | None, int]]]:
    """The FWM model's parameter count, and core -> (width, parameters) of catbAbI's CoreModel
    nearest it (the FWM at its paper sizes: width None)."""
    from qa.data import Vocabulary, load_split

    vocab = Vocabulary.from_stories(*(load_split(s, data_dir, verify=verify)
                                      for s in ("train", "valid", "test")))
    budget = memory.parameter_count(FWMModel(len(vocab)))
    widths: dict[str, tuple[int | None, int]] = {}
    for core in cores:
        if core == "fwm":
            widths[core] = (None, budget)
            continue
        def count(hidden: int, core: str = core) -> int:
            return memory.parameter_count(CoreModel(len(vocab), core, hidden_size=hidden))
        hidden = memory.nearest_width(count, budget, high=2048)
        widths[core] = (hidden, count(hidden))
    return budget, widths


def metro_commands(core: str, hidden: int, seed: int, run_dir: str, args) -> list[list[str]]:
    """Training, then evaluate_agent.py (sampled actions on the training and the test graphs)."""
    commands = []
    if not os.path.exists(os.path.join(run_dir, "final.json")):
        commands.append(["scripts/train_agent.py", "--core", core, "--hidden", str(hidden),
                         "--minutes", f"{args.minutes:g}", *METRO_RECIPE, "--threads", "1",
                         "--seed", str(seed), "--no-progress", "--run-dir", run_dir,
                         *args.train_args])
    commands.append(["scripts/evaluate_agent.py", run_dir, "--episodes",
                     str(args.eval_episodes), "--threads", "1"])
    return commands


def catbabi_commands(core: str, hidden: int | None, seed: int, run_dir: str,
                     args) -> list[list[str]]:
    """Training for --minutes, validating every 500 steps, then the test at batch size 1."""
    command = ["scripts/train_catbabi.py", "--model", core_model_name(core), "--minutes",
               f"{args.minutes:g}", "--final-eval", "always", "--eval-every", "500",
               "--threads", "1", "--seed", str(seed), "--per-task", "--no-progress",
               "--run-dir", run_dir]
    if hidden is not None:
        command += ["--hidden-size", str(hidden)]
    if args.data_dir is not None:
        command += ["--data-dir", args.data_dir]
    if args.no_verify:
        command.append("--no-verify")
    return [command + args.train_args]


def python_command(command: list[str]) -> list[str]:
    """``command`` (a script path relative to the repository, then its arguments) as run from
    any working directory."""
    return [sys.executable, os.path.join(ROOT, command[0]), *command[1:]]


def python_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": ROOT + (os.pathsep + path if path else "")}


def result_file(benchmark: str) -> str:
    return "evaluation.json" if benchmark == "metro" else "test.json"


class Runner:
    """Runs each job's commands in order, ``jobs`` jobs at a time; Ctrl-C (or SIGTERM) is passed
    on to the running commands, which checkpoint and exit, and no new command starts."""

    def __init__(self):
        self.stopping = threading.Event()
        self.running: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.failed: list[str] = []

    def run_job(self, name: str, commands: list[list[str]], log_path: str) -> None:
        with open(log_path, "a") as log:
            for command in commands:
                if self.stopping.is_set():
                    return
                log.write(f"== {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(command)}\n")
                log.flush()
                with self.lock:
                    # a session of its own: a terminal's Ctrl-C reaches the runner only, which
                    # passes it on once (a second SIGINT could cut the checkpoint short)
                    proc = subprocess.Popen(python_command(command), stdout=log,
                                            stderr=subprocess.STDOUT, env=python_env(),
                                            start_new_session=True)
                    self.running.add(proc)
                code = proc.wait()
                with self.lock:
                    self.running.discard(proc)
                if code != 0:
                    if not self.stopping.is_set():
                        self.failed.append(f"{name} (exit {code}; see {log_path})")
                    return
        print(f"{time.strftime('%H:%M:%S')} done {name}", flush=True)

    def stop(self, signum=signal.SIGINT) -> None:
        self.stopping.set()
        with self.lock:
            for proc in self.running:
                if proc.poll() is None:
                    proc.send_signal(signum)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("benchmark", choices=["metro", "catbabi"],
                   help="MetroPOMDP (train_agent.py's CPU recipe) or catbAbI (train_catbabi.py, "
                        "QA mode)")
    p.add_argument("--cores", nargs="+", choices=CORES, default=CORES,
                   help="the registered cores to run (a core of your own once registered in "
                        "memory/__init__.py)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every core")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="wall-clock minutes of each run (default: 40 for metro, 60 for catbabi; "
                        "catbAbI's test at batch size 1 runs after them)")
    p.add_argument("--jobs", type=positive_int, default=2,
                   help="runs at a time, one thread each (at most the machine's cores)")
    p.add_argument("--out", default=None,
                   help="folder of the run folders (default: runs/cores/BENCHMARK)")
    p.add_argument("--eval-episodes", type=positive_int, default=10,
                   help="metro: evaluate_agent.py --episodes (per graph, train and test)")
    p.add_argument("--train-args", default="",
                   help="further options of every training command, as one string with an "
                        "equals sign (--train-args=\"--lr 3e-4\")")
    p.add_argument("--dry-run", action="store_true",
                   help="print the widths and the commands, run nothing")
    add_data_options(p, "the bAbI files (catbabi)")
    args = p.parse_args(argv)
    args.minutes = args.minutes or (40.0 if args.benchmark == "metro" else 60.0)
    args.train_args = shlex.split(args.train_args)
    out = args.out or os.path.join("runs", "cores", args.benchmark)
    if args.jobs > (os.cpu_count() or 1):
        p.error(f"--jobs {args.jobs} is more than this machine's {os.cpu_count()} cores: the "
                f"runs would share cores unevenly and their equal wall time would mean less")
    try:
        budget, widths = (metro_widths(args.cores) if args.benchmark == "metro"
                          else catbabi_widths(args.cores, args.data_dir, not args.no_verify))
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    print(f"{args.benchmark}: each core at the FWM's count ({budget:,} parameters)")
    for core, (hidden, count) in widths.items():
        print(f"  {core:<20} width {hidden or '(paper)':>7}  {count:>9,} parameters "
              f"({count / budget - 1:+.1%})")
    jobs = []
    for seed in args.seeds:
        for core, (hidden, _) in widths.items():
            run_dir = os.path.join(out, f"{core}-s{seed}")
            if os.path.exists(os.path.join(run_dir, result_file(args.benchmark))):
                print(f"  {run_dir}: done before, not run again")
                continue
            make = metro_commands if args.benchmark == "metro" else catbabi_commands
            jobs.append((run_dir, make(core, hidden, seed, run_dir, args)))
    for run_dir, commands in jobs:
        for command in commands:
            print(f"  python {shlex.join(command)}")
    if args.dry_run or not jobs:
        return
    os.makedirs(out, exist_ok=True)
    print(f"{len(jobs)} run(s), {args.jobs} at a time; logs in {out}/*.log; Ctrl-C stops them "
          f"with resumable checkpoints", flush=True)
    runner = Runner()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: runner.stop(signum))
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(runner.run_job, os.path.basename(run_dir), commands,
                                   run_dir + ".log") for run_dir, commands in jobs]
            try:
                for future in futures:
                    while not future.done():
                        time.sleep(0.5)
                    future.result()
            except KeyboardInterrupt:
                runner.stop(signal.SIGINT)
                print("stopping: each run ends its step and saves a resumable checkpoint; the "
                      "same command goes on", file=sys.stderr, flush=True)
                pool.shutdown(wait=True)
                raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if runner.stopping.is_set():
        print("stopped: the same command goes on", file=sys.stderr)
        raise SystemExit(143)
    for failure in runner.failed:
        print(f"failed: {failure}", file=sys.stderr)
    finished = sorted(os.path.join(out, d) for d in os.listdir(out)
                      if os.path.exists(os.path.join(out, d, result_file(args.benchmark))))
    figure = os.path.join(out, "cores.png")
    command = ["scripts/compare_cores.py", *finished, "--out", figure]
    print(f"python {shlex.join(command)}", flush=True)
    subprocess.run(python_command(command), env=python_env(), check=False)
    if runner.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
