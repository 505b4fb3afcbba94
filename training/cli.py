"""What the command-line scripts share: one help format for every ``--help``, the checks of
options that several scripts take, and the exit of a training script that stops early."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

import torch

from training import allocator
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
                        keep_memory: bool = True) -> None:
    """``--device`` (default ``device``; None: no such option), ``--threads`` and, with
    ``keep_memory``, ``--no-keep-memory`` (:mod:`training.allocator`); see
    :func:`apply_machine_options`."""
    if device is not None:
        parser.add_argument("--device", default=device,
                            help="'cpu', 'cuda' or 'auto' (a GPU where there is one)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
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


@contextlib.contextmanager
def stops_as_exit_codes(run_dir: str | os.PathLike) -> Iterator[None]:
    """A training run's early stops as the shell sees them, with one line and no traceback:
    Ctrl-C exits 130 (the shell's status for a process stopped by SIGINT) naming the resumable
    ``run_dir/last.pt``; a non-finite loss (raised before the bad step, so ``last.pt`` is the
    last good one) exits 1 with its message."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\ninterrupted; {os.fspath(run_dir)}/last.pt is resumable (run the same command "
              "again)", file=sys.stderr)
        raise SystemExit(130) from None
    except FloatingPointError as err:
        print(f"stopped: {err}", file=sys.stderr)
        raise SystemExit(1) from None
