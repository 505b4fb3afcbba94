"""The one training loop of the supervised benchmarks (catbAbI and language modelling).

:class:`SequenceTrainer` owns what every such run needs: the run folder with a resumable
``last.pt`` and the best ``best.pt``, exact resume (parameters, optimizer, carried state and
every process's random-number state), data parallelism under ``torchrun`` (process 0 writes,
every process stops together), a wall-clock budget that leaves room for the validation that
ends it (:mod:`training.budget`), Ctrl-C and SIGTERM between steps, a stop before the optimizer
step on a non-finite loss, a progress bar and a log. A benchmark subclasses it and
writes only its step, its validation and its counters, as SB3's algorithms write only
``train()`` under one ``learn()``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from training.atomic import interrupts_deferred, torch_save_atomic
from training.budget import Budget, minutes_text
from training.distributed import (
    any_process,
    barrier,
    gather,
    rank_and_world,
    rng_states,
    set_rng_states,
    this_process,
    wrap,
)


def mean_loss(losses: list[torch.Tensor]) -> float:
    """The float64 mean of the 0-d loss tensors a trainer kept of its steps, read from their
    device at once (a step that read its loss would make the host wait for the device); NaN for
    none."""
    return float(torch.stack(losses).double().mean()) if losses else float("nan")


def perplexity(loss: float) -> float:
    """``exp(loss)``, or infinity where that is beyond a float (a mean NLL over about 709.8
    nats, which a diverging model reaches): the metrics of such a run are still written."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


class SequenceTrainer:
    """Train ``model`` with a carried state in ``run_dir``, resuming ``run_dir/last.pt``.

    Subclasses set :attr:`find_unused_parameters` if need be and write:

    * :meth:`check_resumable` (the checkpoint to resume, or None; refuses a mismatch),
    * :meth:`initial_state`, :meth:`cpu_state`, :meth:`load_state` (the carried state),
    * :meth:`make_optimizer`, :meth:`counters` and :meth:`restore` (their position in the
      data, stored in and read from the checkpoint),
    * :meth:`before_first_step`, :meth:`step` (one batch), :meth:`finished`,
      :meth:`validation_due`, :meth:`validate` (which calls :meth:`keep_if_best`),
      :meth:`bar_options` and :meth:`postfix`, and for a budgeted run
      :meth:`estimate_validation_seconds`.

    ``budget`` (a :class:`training.budget.Budget`, or seconds from now) bounds the run, the
    validation that ends it included: training stops while the budget still holds the time of
    that validation (a probe's estimate before the first one, then the last one's measured
    time), and a validation that no longer fits is skipped with a message (``last.pt`` is
    written all the same). The progress bar then counts the budget's minutes.

    ``self.net`` is the model to call in :meth:`step` (DDP-wrapped under ``torchrun``);
    ``self.state`` the carried state, ``self.optimizer``, ``self.best`` (lowest validation
    loss), ``self.start`` (the loop's start, ``time.monotonic()``).
    """

    #: DistributedDataParallel's option: True where a process may use only part of the model
    #: in a step
    find_unused_parameters = False

    def __init__(self, model: torch.nn.Module, config, run_dir: str | os.PathLike,
                 device="cpu", budget: Budget | float | None = None, progress: bool = True,
                 log: Callable[[dict], None] | None = None, vocabulary: str | None = None):
        self.model, self.config, self.device = model, config, device
        self.budget = budget if isinstance(budget, Budget) else Budget(budget)
        self.progress, self.log = progress, log
        self.vocabulary = vocabulary
        self.rank, self.world = rank_and_world()
        self.run_dir = os.fspath(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        self.last_path = os.path.join(self.run_dir, "last.pt")
        self.best_path = os.path.join(self.run_dir, "best.pt")
        self.best = math.inf
        self.start = time.monotonic()
        model.to(device)

    # ------------------------------------------------------------ what a benchmark writes
    def check_resumable(self) -> dict | None:
        raise NotImplementedError

    def initial_state(self):
        raise NotImplementedError

    def cpu_state(self):
        """The carried state on the CPU, as stored in ``last.pt``."""
        raise NotImplementedError

    def load_state(self, saved):
        """The carried state on ``self.device`` from what :meth:`cpu_state` stored."""
        raise NotImplementedError

    def make_optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def counters(self) -> dict:
        """The subclass's fields of ``last.pt`` (its position in the data and the like)."""
        raise NotImplementedError

    def restore(self, ckpt: dict) -> None:
        """Set the subclass's counters from ``ckpt`` (before :meth:`make_optimizer`)."""
        raise NotImplementedError

    def step(self) -> int:
        """One training batch; returns the progress it made, in the bar's unit."""
        raise NotImplementedError

    def finished(self) -> bool:
        raise NotImplementedError

    def validation_due(self) -> bool:
        """Whether to validate and checkpoint after the step just taken."""
        raise NotImplementedError

    def validate(self) -> dict:
        """Validate, call :meth:`keep_if_best`, and return the row to log."""
        raise NotImplementedError

    def bar_options(self) -> dict:
        """``tqdm`` arguments: ``total``, ``initial`` and the like."""
        raise NotImplementedError

    def postfix(self) -> dict | None:
        """What the bar shows after the step just taken (None: leave it)."""
        return None

    def estimate_validation_seconds(self) -> float | None:
        """The seconds one :meth:`validate` will take, from a short timed probe (called once,
        in budgeted runs, before the first step; None: unknown, nothing is kept for it)."""
        return None

    def before_first_step(self) -> None:
        """Called once, after any resume and before the first step (e.g. to position a data
        stream at the restored step)."""

    # --------------------------------------------------------------------- the machinery
    def stop_if_not_finite(self, loss: torch.Tensor, where: str) -> None:
        """Raise on every process when ``loss`` is not finite on any of them (one left
        waiting in a collective would hang); called before the optimizer step, so that the
        parameters and ``last.pt`` stay those of the last good step."""
        if any_process(not bool(torch.isfinite(loss))):
            raise FloatingPointError(f"non-finite loss at {where}; the last good checkpoint "
                                     f"is {self.last_path}")

    def keep_if_best(self, loss: float, payload: Callable[[], dict]) -> None:
        """A validation ``loss`` below the best so far becomes the best, and process 0 writes
        ``payload()`` to ``best.pt``; the two change together, also on Ctrl-C."""
        with interrupts_deferred():
            if loss < self.best:
                self.best = loss
                if self.rank == 0:
                    torch_save_atomic(payload(), self.best_path)

    def checkpoint(self) -> None:
        """``last.pt``: model, optimizer, best loss, every process's carried state and
        random-number state, config, vocabulary and the subclass's :meth:`counters`."""
        states = gather(self.cpu_state())
        rngs = gather(rng_states(self.device))
        if self.rank == 0:
            torch_save_atomic({"model": self.model.state_dict(),
                               "optimizer": self.optimizer.state_dict(), "best": self.best,
                               "state": states, "torch_rng": rngs,
                               "vocabulary": self.vocabulary,
                               "config": dataclasses.asdict(self.config), **self.counters()},
                              self.last_path)
        barrier()

    def fit(self) -> dict:
        """Run until :meth:`finished` or the time budget; returns the last logged row ({} if
        none was logged, e.g. a finished run resumed)."""
        # each process its own dropout masks; a resume replaces this state by the saved one
        torch.manual_seed(self.config.seed + self.rank)
        ckpt = self.check_resumable()
        self.state = self.initial_state()
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            self.restore(ckpt)
            self.best = ckpt["best"]
            self.state = self.load_state(this_process(ckpt["state"], self.last_path))
            set_rng_states(this_process(ckpt["torch_rng"], self.last_path), self.device)
        self.optimizer = self.make_optimizer()
        if ckpt is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        self.net = wrap(self.model, self.device,
                        find_unused_parameters=self.find_unused_parameters)
        self.before_first_step()

        self.start, row = time.monotonic(), {}
        budget = self.budget
        reserve = 0.0  # seconds kept for the validation that ends a budgeted run
        if budget.limited:
            reserve = self.estimate_validation_seconds() or 0.0
            self.note(f"time budget {minutes_text(budget.seconds)}, "
                      f"{minutes_text(max(budget.left(), 0))} left; about "
                      f"{minutes_text(reserve)} of it kept for the validation at its end")
        bar = _ProgressBar(self.bar_options(), budget,
                           disable=not self.progress or self.rank != 0)
        self.model.train()
        step_seconds = 0.0
        try:
            while not self.finished():
                t_step = time.monotonic()
                with interrupts_deferred():  # Ctrl-C waits for the step to finish
                    bar.update(self.step())
                step_seconds = time.monotonic() - t_step
                postfix = self.postfix()
                if postfix:
                    bar.set_postfix(**postfix)
                # stop while the budget still holds the validation and a margin for a slow
                # step; all processes together (one left waiting in a collective would hang)
                out_of_time = any_process(budget.left() < 1.2 * reserve + 2 * step_seconds)
                if self.validation_due() or out_of_time:
                    # (decided together: every process validates, or none)
                    if any_process(out_of_time and not budget.fits(reserve)):
                        self.note(f"the validation (about {minutes_text(reserve)}) does not "
                                  f"fit in the {minutes_text(max(budget.left(), 0))} left of "
                                  f"the budget: skipped; {self.last_path} is written, and "
                                  f"best.pt keeps the last validated model (if any)")
                        self.checkpoint()
                        break
                    t_valid = time.monotonic()
                    row = self.validate()
                    reserve = time.monotonic() - t_valid
                    if self.log is not None and self.rank == 0:
                        self.log(row)
                    self.checkpoint()
                if out_of_time:
                    break
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM under training.atomic's handler
            self.checkpoint()
            raise
        finally:
            bar.close()
        return row

    def bar_label(self, label: str) -> str | None:
        """``label`` for a progress bar of this process (None: no bar: progress is off, or this
        is not process 0)."""
        return label if self.progress and self.rank == 0 else None

    def note(self, text: str) -> None:
        """A line for the user, from process 0, above any progress bar."""
        if self.rank == 0:
            tqdm.write(text)


class _ProgressBar:
    """The trainer's bar: over the subclass's units (``bar_options``), or for a budgeted run
    over the budget's minutes with the units done shown beside them, so that the bar ends
    where the run will."""

    def __init__(self, options: dict, budget: Budget, disable: bool):
        self.budget, self.options = budget, options
        self.done = options.get("initial", 0)
        self.postfix: dict = {}
        if not budget.limited:
            self.bar = tqdm(**options, disable=disable, dynamic_ncols=True)
            return
        total = budget.seconds / 60
        self.bar = tqdm(total=total, initial=min(budget.elapsed() / 60, total),
                        disable=disable, dynamic_ncols=True,
                        bar_format="{percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min "
                                   "[{elapsed}<{remaining}{postfix}]")

    def update(self, units) -> None:
        if not self.budget.limited:
            self.bar.update(units)
            return
        self.done += units
        self.bar.n = min(self.budget.elapsed() / 60, self.bar.total)
        self._show()

    def set_postfix(self, **postfix) -> None:
        if not self.budget.limited:
            self.bar.set_postfix(**postfix)
            return
        self.postfix = postfix
        self._show()

    def _show(self) -> None:
        unit = self.options.get("unit", "steps")
        total = self.options.get("total")
        fmt = (lambda n: tqdm.format_sizeof(n)) if self.options.get("unit_scale") else (
            lambda n: f"{n:,}")
        done = f"{fmt(self.done)}/{fmt(total)} {unit}" if total else f"{fmt(self.done)} {unit}"
        self.bar.set_postfix_str(", ".join([done] + [f"{k}={v}" for k, v in
                                                     self.postfix.items()]))

    def close(self) -> None:
        self.bar.close()
