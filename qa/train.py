"""catbAbI training and evaluation (paper section 4.1, appendix D).

* QA mode: the loss is taken only at answers; LM mode: at every non-padding target. In both,
  accuracy (argmax over the whole vocabulary) and perplexity (exp of the mean cross-entropy) are
  measured at answers only, overall and per task.
* The training state is carried across all batches and epochs (detached between segments) and
  never reset; evaluation starts from a zero state and streams the fixed story order.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memory.functional import host_shortcuts
from qa.data import (
    EVAL_SEED,
    TASKS,
    Batch,
    EncodedStories,
    eval_segments,
    evaluation_batches,
    train_stream,
)
from training.atomic import torch_load_checkpoint
from training.budget import Budget, estimate_seconds
from training.checksums import refuse_unresumable
from training.distributed import local_slice
from training.loop import SequenceTrainer, mean_loss, perplexity
from training.validation import check_positive_int

MODES = ("qa", "lm")


def _tensors(batch: Batch, device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(getattr(batch, k), device=device)
            for k in ("inputs", "targets", "answer", "valid", "task")}


def _detach(state):
    return type(state)(*(s.detach() for s in state))


def segment_loss(model, batch: Batch, state, mode: str, device="cpu",
                 denominator: float | None = None):
    """Forward one segment: ``(loss, answer_nll, answer_correct, answer_task, state)``;
    ``loss`` is the mean cross-entropy over the mode's positions (None if there are none), or
    their sum divided by ``denominator`` when given (data parallelism: each process divides by
    its share of the global count, so that the averaged gradient is the global mean's).

    On the CPU the answer scores are those of the answers, ``[n]`` each. On a device they are
    ``[T, B]`` with task 0 where there is no answer (what :class:`MetricSums` skips): selecting
    the answers there would make the host wait for the device to say how many there are."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    b = _tensors(batch, device)
    # Scores (and, in QA mode, the loss) are taken only at answers, so the model need only read
    # its memory there: the outputs elsewhere are never used. In LM mode every output is.
    read_mask = b["answer"] if mode == "qa" else None
    logits, state = model(b["inputs"], state, read_mask=read_mask)
    nll = F.cross_entropy(logits.flatten(0, 1), b["targets"].flatten(), reduction="none")
    nll = nll.view_as(b["targets"])
    where = b["answer"] if mode == "qa" else b["valid"]
    answer = b["answer"]
    if host_shortcuts(nll):
        if denominator is not None:
            loss = nll[where].sum() / denominator  # kept in the graph even with no positions
        else:
            loss = nll[where].mean() if where.any() else None
        correct = logits.argmax(-1)[answer] == b["targets"][answer]
        return loss, nll[answer].detach(), correct, b["task"][answer], state
    # the count comes from the batch on the host
    count = int(np.count_nonzero(batch.answer if mode == "qa" else batch.valid))
    total = torch.where(where, nll, 0.0).sum()
    loss = total / denominator if denominator is not None else (
        total / count if count else None)
    correct = (logits.argmax(-1) == b["targets"]) & answer
    return (loss, torch.where(answer, nll, 0.0).detach(), correct,
            torch.where(answer, b["task"], 0), state)


@dataclasses.dataclass
class Metrics:
    """Answer-position metrics: overall and per task (1-20)."""

    loss: float
    accuracy: float
    perplexity: float
    answers: int
    per_task: dict[int, dict[str, float]]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class MetricSums:
    """Running sums of answer NLL, correctness and count per task (1-20), as float64 tensors
    on the device of the scores: adding waits for nothing, :meth:`result` reads them once.
    Entries of task 0 (padding, and the non-answers of a device's :func:`segment_loss`) are
    not counted."""

    def __init__(self):
        self._sums: torch.Tensor | None = None  # [3, tasks + 1]: nll, correct, count

    def add(self, nll: torch.Tensor, correct: torch.Tensor, task: torch.Tensor) -> None:
        task = task.reshape(-1)
        rows = torch.stack([nll.reshape(-1).double(), correct.reshape(-1).double(),
                            torch.ones_like(task, dtype=torch.float64)])
        if self._sums is None:
            self._sums = torch.zeros(3, max(TASKS) + 1, dtype=torch.float64, device=task.device)
        self._sums.index_add_(1, task, rows)

    def _host(self) -> np.ndarray:
        if self._sums is None:
            return np.zeros((3, max(TASKS) + 1))
        sums = self._sums.cpu().numpy().copy()
        sums[:, 0] = 0  # task 0: not an answer
        return sums

    @property
    def answers(self) -> int:
        """Answers counted so far (reads a device's sums)."""
        return int(self._host()[2].sum())

    @property
    def accuracy(self) -> float:
        """Accuracy so far (NaN before the first answer; reads a device's sums)."""
        _, correct, count = self._host()
        return float(correct.sum() / count.sum()) if count.sum() else float("nan")

    def result(self) -> Metrics:
        nll, correct, count = self._host()
        n = count.sum()
        if n == 0:
            raise ValueError("no answers were scored")
        loss = nll.sum() / n
        per_task = {int(t): {"accuracy": float(correct[t] / count[t]),
                             "perplexity": perplexity(float(nll[t] / count[t])),
                             "answers": int(count[t])}
                    for t in TASKS if count[t] > 0}
        return Metrics(loss=float(loss), accuracy=float(correct.sum() / n),
                       perplexity=perplexity(loss), answers=int(n), per_task=per_task)


@torch.no_grad()
def evaluate(model, data: EncodedStories, batch_size: int = 1, bptt: int = 200,
             device="cpu", seed: int = EVAL_SEED, max_batches: int | None = None,
             progress: str | None = None) -> Metrics:
    """Stream the fixed story order from a zero state; metrics at answers. ``max_batches``
    stops after that many segments (a quick look at the start of the stream; None: all), or
    later if none of them held an answer yet (metrics need one). ``progress`` names a progress
    bar over the segments (None: no bar)."""
    check_positive_int("max_batches", max_batches, optional=True)
    total = None
    if progress is not None:  # (the bar's length only: dealing the stories costs a loop)
        total = evaluation_batches(data, batch_size, bptt, seed)
        total = total if max_batches is None else min(max_batches, total)
    bar = tqdm(total=total, desc=progress, disable=progress is None, leave=False,
               dynamic_ncols=True, unit="batch")
    was_training = model.training
    model.eval()
    sums = MetricSums()
    state = model.initial_state(batch_size)
    state = type(state)(*(s.to(device) for s in state))
    for i, batch in enumerate(eval_segments(data, batch_size, bptt, seed)):
        if max_batches is not None and i >= max_batches and sums.answers > 0:
            break
        _, nll, correct, task, state = segment_loss(model, batch, state, "qa", device)
        sums.add(nll, correct, task)
        bar.update()
    bar.close()
    model.train(was_training)
    return sums.result()



@dataclasses.dataclass
class TrainConfig:
    """Training settings; the defaults are the paper's FWM run (appendix D, the authors' code)."""

    mode: str = "qa"
    batch_size: int = 32
    bptt: int = 200
    lr: float = 1e-3
    steps: int = 60_000
    eval_every: int = 1_000
    valid_batch_size: int = 64
    #: validate on the first this-many segments of the validation stream only (None: all)
    valid_batches: int | None = None
    grad_clip: float | None = None
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("batch_size", "bptt", "steps", "eval_every", "valid_batch_size"):
            check_positive_int(f"TrainConfig.{name}", getattr(self, name))
        check_positive_int("TrainConfig.valid_batches", self.valid_batches, optional=True)


#: The settings a resumed run must share with its checkpoint (the others are budgets).
RESUME_FIXED = ("mode", "batch_size", "bptt", "lr", "grad_clip", "seed")


def check_resumable(run_dir: str | os.PathLike, model, config: TrainConfig,
                    vocabulary: str | None, device="cpu") -> dict | None:
    """The checkpoint ``run_dir/last.pt`` if there is one and ``model`` and ``config`` can
    resume it, None if there is none.

    Raises:
        ValueError: the checkpoint holds another kind of model or other parameter shapes, was
            trained with other settings (:data:`RESUME_FIXED`) or another vocabulary; the
            message names every difference.
    """
    last_path = os.path.join(os.fspath(run_dir), "last.pt")
    if not os.path.exists(last_path):
        return None
    ckpt = torch_load_checkpoint(last_path, map_location=device)
    problems = []
    saved_class = ckpt.get("model_class")
    if saved_class is not None and saved_class != type(model).__name__:
        problems.append(f"model {saved_class} (now {type(model).__name__})")
    options = getattr(model, "model_options", None)
    if "model_options" in ckpt and ckpt["model_options"] != options:
        problems.append(f"model options {ckpt['model_options']} (now {options})")
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
    if mine != theirs:
        missing, extra = sorted(set(theirs) - set(mine)), sorted(set(mine) - set(theirs))
        shapes = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
        problems.append("parameters " + "; ".join(part for part in (
            f"only in the checkpoint: {', '.join(missing[:4])}" if missing else "",
            f"only in the model: {', '.join(extra[:4])}" if extra else "",
            ", ".join(f"{k} {theirs[k]} (now {mine[k]})" for k in shapes[:4])) if part))
    problems += [f"{k} {ckpt['config'][k]!r} (now {getattr(config, k)!r})" for k in RESUME_FIXED
                 if ckpt["config"][k] != getattr(config, k)]
    refuse_unresumable(last_path, problems, ckpt.get("vocabulary"), vocabulary)
    return ckpt


class QATrainer(SequenceTrainer):
    """catbAbI's step and validation in :class:`training.loop.SequenceTrainer` (see
    :func:`train`)."""

    # a process whose rows hold no answer in a segment reads nothing in QA mode, so its read
    # projections get no gradient in that step
    find_unused_parameters = True

    def __init__(self, model, train_data: EncodedStories, valid_data: EncodedStories,
                 config: TrainConfig, run_dir, **kwargs):
        super().__init__(model, config, run_dir, **kwargs)
        self.train_data, self.valid_data = train_data, valid_data
        self.rows = local_slice(config.batch_size)
        self.step_count = 0
        self.sums, self.running, self.epoch = MetricSums(), [], 0

    def check_resumable(self):
        return check_resumable(self.run_dir, self.model, self.config, self.vocabulary,
                               self.device)

    def initial_state(self):
        return self.model.initial_state(self.rows.stop - self.rows.start)

    def cpu_state(self):
        return tuple(s.cpu() for s in self.state)

    def load_state(self, saved):
        return type(self.state)(*(s.to(self.device) for s in saved))

    def make_optimizer(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    def counters(self):
        return {"step": self.step_count, "model_class": type(self.model).__name__,
                "model_options": getattr(self.model, "model_options", None)}

    def restore(self, ckpt):
        self.step_count = ckpt["step"]

    def estimate_validation_seconds(self):
        config = self.config
        total = evaluation_batches(self.valid_data, config.valid_batch_size, config.bptt)
        if config.valid_batches is not None:
            total = min(total, config.valid_batches)
        return estimate_seconds(
            lambda k: evaluate(self.model, self.valid_data, config.valid_batch_size,
                               config.bptt, self.device, max_batches=k),
            probe=2, total=total)

    def before_first_step(self):
        self.stream = train_stream(self.train_data, self.config.batch_size, self.config.bptt,
                                   self.config.seed)
        for _ in range(self.step_count):  # fast-forward to where the checkpoint left off
            next(self.stream)

    def bar_options(self):
        return {"total": self.config.steps, "initial": self.step_count}

    def finished(self):
        return self.step_count >= self.config.steps

    def step(self):
        config = self.config
        self.epoch, batch = next(self.stream)
        where = batch.answer if config.mode == "qa" else batch.valid
        count = int(where.sum())  # loss positions in the whole (global) batch
        local = Batch(*(getattr(batch, f.name)[:, self.rows] for f in dataclasses.fields(Batch)))
        loss, nll, correct, task, state = segment_loss(
            self.net, local, self.state, config.mode, self.device,
            denominator=count / self.world if count else None)
        self.state = _detach(state)  # no positions anywhere: none here either, loss None
        if loss is not None:  # (a loss exists on all processes or on none)
            self.stop_if_not_finite(loss, f"step {self.step_count}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            self.running.append(loss.detach())  # read every 20 steps, by postfix()
        self.sums.add(nll, correct, task)
        self.step_count += 1
        return 1

    def postfix(self):
        if self.step_count % 20 or not self.running or self.sums.answers == 0:
            return None
        return {"loss": f"{mean_loss(self.running[-20:]):.3f}",
                "acc": f"{self.sums.accuracy:.3f}",
                "epoch": self.epoch}

    def validation_due(self):
        return (self.step_count % self.config.eval_every == 0
                or self.step_count == self.config.steps)

    def validate(self):
        config = self.config
        valid = evaluate(self.model, self.valid_data, config.valid_batch_size, config.bptt,
                         self.device, max_batches=config.valid_batches,
                         progress=self.bar_label("validation"))
        train_m = self.sums.result() if self.sums.answers else None
        row = {"step": self.step_count, "epoch": self.epoch,
               "train_loss": mean_loss(self.running),
               "train_accuracy": train_m.accuracy if train_m else float("nan"),
               "valid_loss": valid.loss, "valid_accuracy": valid.accuracy,
               "valid_perplexity": valid.perplexity, "seconds": time.monotonic() - self.start}
        self.sums, self.running = MetricSums(), []
        self.keep_if_best(valid.loss, lambda: {"model": self.model.state_dict(),
                                               "step": self.step_count,
                                               "valid": valid.to_dict()})
        return row


def train(model, train_data: EncodedStories, valid_data: EncodedStories, config: TrainConfig,
          run_dir: str | os.PathLike, device="cpu", budget: Budget | float | None = None,
          progress: bool = True, log=None, vocabulary: str | None = None) -> dict:
    """Train ``model`` on the endless training stream, validating every ``config.eval_every``
    steps; keeps ``run_dir/last.pt`` (resumable: model, optimizer, step, carried state) and
    ``run_dir/best.pt`` (lowest validation answer loss). An existing ``last.pt`` is resumed and
    the stream is fast-forwarded to its step, so a resumed run continues the same sequence of
    batches. ``vocabulary`` (:meth:`qa.data.Vocabulary.fingerprint`) is stored and must match
    on resume. Returns the last validation metrics as a dict.

    Under ``torchrun`` (see :mod:`training.distributed`) the model is wrapped in
    DistributedDataParallel and process r trains rows ``[r B/W, (r+1) B/W)`` of the same
    stream (``config.batch_size`` B is global, divisible by the W processes), with the loss
    normalised by the global count so that the gradient is the single-process one. Training
    accuracy is then that of process 0's rows. Process 0 alone logs and writes checkpoints."""
    return QATrainer(model, train_data, valid_data, config, run_dir, device=device,
                     budget=budget, progress=progress, log=log,
                     vocabulary=vocabulary).fit()
