"""Training and evaluation of the word-level language models (paper section 4.3, appendix H).

Training follows AWD-LSTM: the batched training stream is read with variable BPTT lengths
(:func:`lm.data.sample_seq_len`) and the learning rate is rescaled by ``seq_len / bptt``; the
hidden state is carried (detached) between batches and zeroed at every epoch start; the loss is
the cross-entropy plus AR and TAR; gradients are clipped. The optimiser is Adam until
``asgd_epoch`` epochs are done, then averaged SGD (``torch.optim.ASGD`` with ``t0=0,
lambd=0``), whose averaged weights are the ones evaluated and kept.

Evaluation streams a split from a zero state with fixed-length segments; the softmax
temperature can be tuned on validation (appendix H): one pass scores every temperature of a
grid from the same logits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lm.data import batchify, get_batch, sample_seq_len
from training.atomic import torch_load_checkpoint
from training.budget import Budget, estimate_seconds
from training.checksums import refuse_unresumable
from training.distributed import local_slice
from training.loop import SequenceTrainer, mean_loss, perplexity
from training.regularization import (
    activation_regularization,
    temporal_activation_regularization,
)
from training.validation import check_positive_int


@dataclasses.dataclass
class TrainConfig:
    """Training settings; the defaults are the paper's PTB run (appendix H, table 4).

    Attributes:
        batch_size, bptt: training batch size and mean BPTT length.
        lr: Adam learning rate.
        epochs: epochs in total.
        asgd_epoch: switch from Adam to ASGD after this many epochs (None: never). The paper
            says 916 (PTB) and 1372 (WT2); the authors' code used 765 of 900 for PTB.
        asgd_lr: ASGD learning rate.
        clip: gradient-norm clipping.
        weight_decay: L2 on all parameters (both optimisers).
        alpha, beta: AR and TAR coefficients.
        eval_batch_size: validation batch size during training (AWD-LSTM: 10).
        eval_every: validate every this many batches (None: at the end of every epoch).
        max_tokens: stop after this many training tokens (small-budget runs; None: no limit).
        seed: seeds the dropout masks and the BPTT lengths.
    """

    batch_size: int = 20
    bptt: int = 70
    lr: float = 1e-3
    epochs: int = 1000
    asgd_epoch: int | None = 916
    asgd_lr: float = 2.0
    clip: float = 0.25
    weight_decay: float = 1.2e-6
    alpha: float = 2.0
    beta: float = 1.0
    eval_batch_size: int = 10
    eval_every: int | None = None
    max_tokens: int | None = None
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "bptt", "epochs", "eval_batch_size"):
            check_positive_int(f"TrainConfig.{name}", getattr(self, name))
        for name in ("asgd_epoch", "eval_every", "max_tokens"):
            check_positive_int(f"TrainConfig.{name}", getattr(self, name), optional=True)
        for name in ("lr", "asgd_lr", "clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)!r}")


#: The paper's settings (table 4 and appendix H): training config and model dropouts.
PRESETS = {
    "ptb": (TrainConfig(),
            {"dropout": 0.4, "dropoute": 0.1, "dropouth": 0.3, "dropouti": 0.5, "wdrop": 0.66}),
    "wt2": (TrainConfig(batch_size=80, epochs=1600, asgd_epoch=1372, asgd_lr=0.5),
            {"dropout": 0.4, "dropoute": 0.1, "dropouth": 0.25, "dropouti": 0.7, "wdrop": 0.61}),
}


def perplexity_summary(loss: float) -> dict[str, float]:
    """The paper's table 5 columns for a mean cross-entropy in nats."""
    return {"loss": loss, "perplexity": perplexity(loss), "bits_per_word": loss / math.log(2)}


def evaluation_batches(data: torch.Tensor, batch_size: int, bptt: int) -> int:
    """The number of segments :func:`evaluate` reads from ``data [N]``."""
    return -(-(data.numel() // batch_size - 1) // bptt)


@torch.no_grad()
def evaluate(model, data: torch.Tensor, batch_size: int = 1, bptt: int = 70,
             temperatures: tuple[float, ...] = (1.0,), device="cpu",
             max_batches: int | None = None, progress: str | None = None) -> dict[float, float]:
    """Mean cross-entropy per token (nats) of ``data [N]`` for every softmax temperature, the
    split streamed as ``batch_size`` columns from a zero state in segments of ``bptt``.
    ``max_batches`` stops after that many segments (a timing probe; None: all); ``progress``
    names a progress bar over the segments (None: no bar)."""
    if any(t <= 0 for t in temperatures):
        raise ValueError(f"temperatures must be > 0, got {temperatures}")
    check_positive_int("max_batches", max_batches, optional=True)
    was_training = model.training
    model.eval()
    source = batchify(data, batch_size).to(device)  # (N / B, B)
    temps = torch.tensor(temperatures, device=device, dtype=torch.float64)
    total = torch.zeros(len(temperatures), dtype=torch.float64, device=device)
    count = 0
    state = None
    starts = range(0, len(source) - 1, bptt)[:max_batches]
    for i in tqdm(starts, desc=progress, disable=progress is None, leave=False,
                  dynamic_ncols=True, unit="batch"):
        inputs, targets = get_batch(source, i, bptt)  # (T, B) each
        out = model(inputs, state)
        state = out.state
        logits = out.logits.double().flatten(0, 1)  # (T B, V)
        for j, t in enumerate(temps):
            total[j] += F.cross_entropy(logits / t, targets.flatten(), reduction="sum")
        count += targets.numel()
    model.train(was_training)
    return {t: float(v) / count for t, v in zip(temperatures, total)}


@torch.no_grad()
def token_losses(model, data: torch.Tensor, stop: int, bptt: int = 70,
                 device="cpu") -> torch.Tensor:
    """Cross-entropy (nats) of each of the first ``stop`` predictions of ``data [N]``, read at
    batch size 1 from a zero state: entry t is the loss of ``data[t + 1]``. ``[stop]``."""
    if not 0 < stop < data.numel():
        raise ValueError(f"stop must be in [1, {data.numel() - 1}], got {stop}")
    was_training = model.training
    model.eval()
    source = data[:stop + 1, None].to(device)  # (stop + 1, 1)
    losses, state = [], None
    for i in range(0, stop, bptt):
        inputs, targets = get_batch(source, i, bptt)
        out = model(inputs, state)
        state = out.state
        losses.append(F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(),
                                      reduction="none"))
    model.train(was_training)
    return torch.cat(losses).cpu()


@contextlib.contextmanager
def averaged_weights(model, optimizer):
    """Within the block the model holds ASGD's averaged weights (no-op for other optimisers)."""
    if not isinstance(optimizer, torch.optim.ASGD):
        yield
        return
    saved = {}
    for p in model.parameters():
        if "ax" in optimizer.state.get(p, {}):
            saved[p] = p.detach().clone()
            p.data.copy_(optimizer.state[p]["ax"])
    try:
        yield
    finally:
        for p, value in saved.items():
            p.data.copy_(value)


def _make_optimizer(kind: str, model, config: TrainConfig):
    if kind == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.ASGD(model.parameters(), lr=config.asgd_lr, t0=0, lambd=0.0,
                            weight_decay=config.weight_decay)



#: TrainConfig fields that may change when a run is resumed (budgets and cadence).
RESUME_FREE = ("epochs", "max_tokens", "eval_every")


def check_resumable(run_dir: str | os.PathLike, model, config: TrainConfig,
                    vocabulary: str | None, device="cpu") -> dict | None:
    """The checkpoint ``run_dir/last.pt`` if there is one and ``model`` and ``config`` can
    resume it, None if there is none.

    Raises:
        ValueError: the checkpoint holds another model configuration, other training settings
            (all but :data:`RESUME_FREE`) or another vocabulary; the message names every
            difference.
    """
    last_path = os.path.join(os.fspath(run_dir), "last.pt")
    if not os.path.exists(last_path):
        return None
    ckpt = torch_load_checkpoint(last_path, map_location=device)
    model_config = dataclasses.asdict(model.config)
    problems = [f"model {k}={v!r} (now {model_config.get(k)!r})"
                for k, v in ckpt["model_config"].items() if model_config.get(k) != v]
    problems += [f"{k}={v!r} (now {getattr(config, k)!r})" for k, v in ckpt["config"].items()
                 if k not in RESUME_FREE and getattr(config, k) != v]
    refuse_unresumable(last_path, problems, ckpt.get("vocabulary"), vocabulary)
    return ckpt


class LMTrainer(SequenceTrainer):
    """AWD-LSTM's step and validation in :class:`training.loop.SequenceTrainer` (see
    :func:`train`)."""

    def __init__(self, model, train_data: torch.Tensor, valid_data: torch.Tensor,
                 config: TrainConfig, run_dir, **kwargs):
        super().__init__(model, config, run_dir, **kwargs)
        self.valid_data = valid_data
        columns = local_slice(config.batch_size)
        self.local_batch = columns.stop - columns.start
        # (N / B, B / W): this process's columns of the batched stream
        self.source = batchify(train_data, config.batch_size)[:, columns].to(self.device)
        self.rng = np.random.default_rng(config.seed)  # the same BPTT lengths everywhere
        self.kind, self.epoch, self.position, self.batches, self.tokens = "adam", 0, 0, 0, 0
        tokens_per_epoch = (len(self.source) - 1) * config.batch_size  # over all processes
        self.token_budget = config.epochs * tokens_per_epoch
        if config.max_tokens is not None:
            self.token_budget = min(self.token_budget, config.max_tokens)
        self.running, self.epoch_ended = [], False

    def check_resumable(self):
        return check_resumable(self.run_dir, self.model, self.config, self.vocabulary,
                               self.device)

    def initial_state(self):
        return self.model.initial_state(self.local_batch, self.device)

    def cpu_state(self):
        return self.model.map_state(self.state, torch.Tensor.cpu)

    def load_state(self, saved):
        return self.model.map_state(saved, lambda t: t.detach().to(self.device))

    def make_optimizer(self):
        return _make_optimizer(self.kind, self.model, self.config)

    def counters(self):
        return {"model_config": dataclasses.asdict(self.model.config),
                "optimizer_kind": self.kind, "epoch": self.epoch, "position": self.position,
                "batches": self.batches, "tokens": self.tokens,
                "numpy_rng": self.rng.bit_generator.state}

    def restore(self, ckpt):
        self.kind, self.epoch, self.position, self.batches, self.tokens = (ckpt[k] for k in (
            "optimizer_kind", "epoch", "position", "batches", "tokens"))
        self.rng.bit_generator.state = ckpt["numpy_rng"]

    def estimate_validation_seconds(self):
        config = self.config
        total = evaluation_batches(self.valid_data, config.eval_batch_size, config.bptt)
        return estimate_seconds(
            lambda k: evaluate(self.model, self.valid_data, config.eval_batch_size,
                               config.bptt, device=self.device, max_batches=k),
            probe=3, total=total)

    def before_first_step(self):
        # throughput of this call, validation excluded
        self.start_tokens, self.step_seconds = self.tokens, 0.0

    def bar_options(self):
        return {"total": self.token_budget, "initial": min(self.tokens, self.token_budget), "unit": "tok",
                "unit_scale": True}

    def finished(self):
        return self.epoch >= self.config.epochs or self.tokens >= self.token_budget

    def step(self):
        config, model = self.config, self.model
        if self.kind == "adam" and config.asgd_epoch is not None and (
                self.epoch >= config.asgd_epoch):
            self.kind = "asgd"  # appendix H: Adam, then averaged SGD
            self.optimizer = self.make_optimizer()
        t_step = time.monotonic()
        optimizer = self.optimizer
        seq_len = sample_seq_len(config.bptt, self.rng)
        inputs, targets = get_batch(self.source, self.position, seq_len)  # (T, B)
        base_lr = optimizer.param_groups[0]["lr"]
        optimizer.param_groups[0]["lr"] = base_lr * len(inputs) / config.bptt
        out = self.net(inputs, self.state)
        self.state = model.detach_state(out.state)
        raw_loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten())
        self.stop_if_not_finite(raw_loss, f"batch {self.batches}")
        loss = (raw_loss + activation_regularization(out.dropped, config.alpha)
                + temporal_activation_regularization(out.raw, config.beta))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()  # (ASGD applies a step's rate one step late: torch's eta)
        optimizer.param_groups[0]["lr"] = base_lr
        self.position += len(inputs)
        self.batches += 1
        self.tokens += targets.numel() * self.world
        self.running.append(raw_loss.detach())  # read every 10 batches, by postfix()
        self.step_seconds += time.monotonic() - t_step
        self.epoch_ended = self.position >= len(self.source) - 1
        if self.epoch_ended:  # AWD-LSTM starts every epoch from a zero state
            self.epoch, self.position = self.epoch + 1, 0
            self.state = self.initial_state()
        return targets.numel() * self.world

    def postfix(self):
        if self.batches % 10:
            return None
        return {"epoch": self.epoch, "ppl": f"{perplexity(mean_loss(self.running[-50:])):.1f}"}

    def validation_due(self):
        every = self.config.eval_every
        return bool(every and self.batches % every == 0) or self.epoch_ended or (
            self.tokens >= self.token_budget)

    def validate(self):
        model, optimizer, config = self.model, self.optimizer, self.config
        with averaged_weights(model, optimizer):  # ASGD: its averages are evaluated and kept
            loss = evaluate(model, self.valid_data, config.eval_batch_size, config.bptt,
                            device=self.device, progress=self.bar_label("validation"))[1.0]
            self.keep_if_best(loss, lambda: {
                "model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
                "epoch": self.epoch, "batches": self.batches, "tokens": self.tokens,
                "valid_loss": loss})
        row = {"step": self.batches, "epoch": self.epoch, "tokens": self.tokens,
               "train_loss": mean_loss(self.running),
               "valid_loss": loss, "valid_perplexity": perplexity(loss),
               "lr": optimizer.param_groups[0]["lr"], "optimizer": self.kind,
               "seconds": time.monotonic() - self.start,
               "train_tokens_per_s": (self.tokens - self.start_tokens)
               / max(self.step_seconds, 1e-9)}
        self.running.clear()
        return row


def train(model, train_data: torch.Tensor, valid_data: torch.Tensor, config: TrainConfig,
          run_dir: str | os.PathLike, device="cpu", budget: Budget | float | None = None,
          progress: bool = True, log=None, vocabulary: str | None = None) -> dict:
    """Train ``model`` (a :class:`lm.model.LanguageModel`) on the token stream ``train_data``.
    ``vocabulary`` (e.g. :meth:`lm.data.Dictionary.fingerprint`) is stored in the checkpoints
    and must match on resume.

    Validates every ``config.eval_every`` batches and at every epoch end; keeps
    ``run_dir/last.pt`` (model, optimiser, position, carried state, random-number states: a
    resumed run continues exactly as if uninterrupted, also after Ctrl-C) and
    ``run_dir/best.pt`` (lowest validation loss). Stops after ``config.epochs`` epochs,
    ``config.max_tokens`` tokens or the wall-clock ``budget`` (a
    :class:`training.budget.Budget` or seconds, the validation that ends it included). Returns
    the last logged row.

    Under ``torchrun`` (a process group is initialised, see :mod:`training.distributed`) the
    model is wrapped in DistributedDataParallel and process r trains columns
    ``[r B/W, (r+1) B/W)`` of the batched stream (``config.batch_size`` B is the global batch,
    divisible by the number of processes W), so the averaged gradient is the single-process
    one. Every process validates; process 0 alone writes checkpoints and logs, and
    ``last.pt`` holds every process's carried state and random-number state.
    """
    return LMTrainer(model, train_data, valid_data, config, run_dir, device=device,
                     budget=budget, progress=progress, log=log,
                     vocabulary=vocabulary).fit()
