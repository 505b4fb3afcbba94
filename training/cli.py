"""What the command-line scripts share: one help format for every ``--help``, the checks of
options that several scripts take, and the exit of a training script that stops early."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
from collections.abc import Callable, Iterator

import torch

from training import allocator
from training.atomic import Terminated, sigterm_as_interrupt
from training.distributed import parse_device


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written (examples keep their lines) and every option's default
    stated once: appended as ``(default: X)`` unless the help text already says what the
    default is, or there is nothing to say (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # identity, not ==: a default of 0 (== False) is worth stating
        nothing = default is None or default is False or default is argparse.SUPPRESS \
            or (isinstance(default, list) and not default)
        if ("default" in text or nothing
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        return f"{text} (default: %(default)s)"


def check_eval_envs(parser: argparse.ArgumentParser, eval_envs: int, *env_ids: str) -> None:
    """``--eval-envs``: at least 1, and for a MetroPOMDP id at most the graphs of its set (env
    ``i`` plays graph ``i``; more envs would replay graphs). Exits through ``parser.error``."""
    from metro_pomdp import registered_config

    if eval_envs < 1:
        parser.error(f"--eval-envs must be a positive integer, got {eval_envs}")
    for env_id in env_ids:
        config = registered_config(env_id)
        if config is not None and eval_envs > config.n_graphs:
            parser.error(f"--eval-envs {eval_envs}: the evaluation sets have {config.n_graphs} "
                         f"graphs (env i plays graph i); use at most {config.n_graphs}")


def add_machine_options(parser: argparse.ArgumentParser, device: str | None = "auto",
                        keep_memory: bool = True, threads: int | None = None,
                        threads_help: str | None = None) -> None:
    """``--device`` (default ``device``; None: no such option), ``--threads`` (default
    ``threads``; None: torch's choice) and, with
    ``keep_memory``, ``--no-keep-memory`` (:mod:`training.allocator`); see
    :func:`apply_machine_options`."""
    if device is not None:
        parser.add_argument("--device", default=device,
                            help="'cpu', 'cuda' or 'auto' (a GPU where there is one)")
    parser.add_argument("--threads", type=int, default=threads,
                        help=threads_help or "torch CPU threads (default: torch's choice)")
    if keep_memory:
        allocator.add_keep_memory_flag(parser)


def add_data_options(parser: argparse.ArgumentParser, files: str) -> None:
    """``--data-dir`` (default ``$FWM_DATA_DIR``) and ``--no-verify`` (skip the SHA-256 check
    of ``files``, e.g. "the bAbI files", for files of one's own)."""
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $FWM_DATA_DIR)")
    parser.add_argument("--no-verify", action="store_true",
                        help=f"skip the SHA-256 check of {files} (for files of your own; a "
                             f"partial copy is then used with a warning)")


def apply_machine_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Check and apply what :func:`add_machine_options` added: ``--threads`` (at least 1) sets
    torch's thread count, ``--device`` is resolved in place (``auto``: CUDA where there is
    one), the allocator keeps freed memory unless ``--no-keep-memory``. A bad value exits
    through ``parser.error``. Returns whether freed memory is kept."""
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if hasattr(args, "device"):
        args.device = parse_device(parser, args.device)
    return allocator.from_args(args) if hasattr(args, "no_keep_memory") else False


#: Exit codes of a run stopped by a signal: the shell's 128 + the signal's number.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def interrupt_exit_code(err: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (:class:`training.atomic.Terminated`)."""
    return EXIT_SIGTERM if isinstance(err, Terminated) else EXIT_SIGINT


def interrupt_name(err: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"


@contextlib.contextmanager
def stops_as_exit_codes(run_dir: str | os.PathLike) -> Iterator[None]:
    """A training run's early stops as the shell sees them, with one line and no traceback:
    Ctrl-C exits 130 and SIGTERM (a cluster scheduler's stop) 143, the shell's statuses for a
    process stopped by those signals, naming the resumable ``run_dir/last.pt`` (SIGTERM is
    handled like Ctrl-C inside the block: :func:`training.atomic.sigterm_as_interrupt`); a
    non-finite loss (raised before the bad step, so ``last.pt`` is the last good one) exits 1
    with its message."""
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt as err:
        print(f"\n{interrupt_name(err)}; {os.fspath(run_dir)}/last.pt is resumable (run the "
              "same command again)", file=sys.stderr)
        raise SystemExit(interrupt_exit_code(err)) from None
    except FloatingPointError as err:
        print(f"stopped: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (argparse names the flag in its error)."""
    return _number(text, lambda v: v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    """An argparse ``type``: a finite number >= 0."""
    return _number(text, lambda v: v >= 0, "a number >= 0")


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _number(text: str, ok, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def add_budget_options(parser: argparse.ArgumentParser, evaluation: str) -> None:
    """``--minutes`` (the whole command's budget), ``--final-eval``, ``--no-final-eval`` and
    ``--eval-only``; ``evaluation`` says what the final evaluation is."""
    parser.add_argument("--minutes", type=positive_float, default=None,
                        help="wall-clock budget of the whole command: training, its "
                             "validations and the final evaluation (which is skipped, with the "
                             "command that runs it later, when it does not fit)")
    parser.add_argument("--final-eval", choices=["auto", "always", "never"], default="auto",
                        help=f"the final evaluation ({evaluation}): 'auto' runs it unless it "
                             f"does not fit in what is left of --minutes, 'always' runs it "
                             f"anyway (its estimated time is printed first), 'never' skips it")
    parser.add_argument("--no-final-eval", action="store_true",
                        help="the same as --final-eval never")
    parser.add_argument("--eval-only", action="store_true",
                        help="no training: run the final evaluation of RUN_DIR/best.pt (the "
                             "command a skipped evaluation prints)")


def final_evaluation_mode(args: argparse.Namespace) -> str:
    """``always`` for ``--eval-only``, ``never`` for ``--no-final-eval``, else ``--final-eval``."""
    if args.eval_only:
        return "always"
    return "never" if args.no_final_eval else args.final_eval


def eval_only_command(script: str, argv: list[str]) -> str:
    """The command that runs a run's final evaluation later: ``argv`` without its budget and
    final-evaluation flags, with ``--eval-only``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--minutes", "--final-eval"):
            skip = True
            continue
        if arg.startswith(("--minutes=", "--final-eval=")) or arg in ("--no-final-eval",
                                                                      "--eval-only"):
            continue
        out.append(str(arg))
    return shlex.join(["python", f"scripts/{script}", *out, "--eval-only"])


def final_evaluation_fits(mode: str, budget, estimate: Callable[[], float], what: str,
                          later: str) -> bool:
    """Whether to run the final evaluation ``what``: ``mode`` (:func:`final_evaluation_mode`)
    ``never`` says no; ``auto`` says no, printing why and the command ``later`` that runs it,
    when its ``estimate()`` (seconds, from a probe) does not fit in what is left of ``budget``
    (a :class:`training.budget.Budget`); otherwise the estimate is printed and the answer is
    yes."""
    from training.budget import minutes_text

    if mode == "never":
        return False
    seconds = estimate()
    if mode == "auto" and not budget.fits(seconds):
        print(f"{what}: skipped; it needs about {minutes_text(seconds)} and "
              f"{minutes_text(max(budget.left(), 0))} of the --minutes budget are left. Run it "
              f"later with:\n  {later}", flush=True)
        return False
    print(f"{what}: about {minutes_text(seconds)} (estimated from its first batches)",
          flush=True)
    return True


@contextlib.contextmanager
def evaluation_stops(run_dir: str | os.PathLike, later: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM during a final evaluation: one line saying that the trained model is
    kept in ``run_dir`` and the command ``later`` that evaluates it, exit 130 / 143."""
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt as err:
        print(f"\n{interrupt_name(err)} during the final evaluation; the trained model is kept "
              f"in {os.fspath(run_dir)} (best.pt). Evaluate it with:\n  {later}",
              file=sys.stderr)
        raise SystemExit(interrupt_exit_code(err)) from None
