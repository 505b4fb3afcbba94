"""What the command-line scripts share: one help format for every ``--help``, the checks of
options that several scripts take, and the exit of a training script that stops early."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator


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
