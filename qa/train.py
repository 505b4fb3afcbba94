"""catbAbI training and evaluation (paper section 4.1, appendix D).

* QA mode: the loss is taken only at answers; LM mode: at every non-padding target. In both,
  accuracy (argmax over the whole vocabulary) and perplexity (exp of the mean cross-entropy) are
  measured at answers only, overall and per task.
* The training state is carried across all batches and epochs (detached between segments) and
  never reset; evaluation starts from a zero state and streams the fixed story order.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from qa.data import TASKS, Batch, EncodedStories, eval_segments

MODES = ("qa", "lm")


def _tensors(batch: Batch, device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(getattr(batch, k), device=device)
            for k in ("inputs", "targets", "answer", "valid", "task")}


def _detach(state):
    return type(state)(*(s.detach() for s in state))


def segment_loss(model, batch: Batch, state, mode: str, device="cpu"):
    """Forward one segment: ``(loss, answer_nll [n], answer_correct [n], answer_task [n],
    state)``; ``loss`` is the mean cross-entropy over the mode's positions (None if there are
    none)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    b = _tensors(batch, device)
    logits, state = model(b["inputs"], state)
    nll = F.cross_entropy(logits.flatten(0, 1), b["targets"].flatten(), reduction="none")
    nll = nll.view_as(b["targets"])
    where = b["answer"] if mode == "qa" else b["valid"]
    loss = nll[where].mean() if where.any() else None
    answer = b["answer"]
    correct = logits.argmax(-1)[answer] == b["targets"][answer]
    return loss, nll[answer].detach(), correct, b["task"][answer], state


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
    """Running sums of answer NLL and correctness per task."""

    def __init__(self):
        self.nll = np.zeros(max(TASKS) + 1)
        self.correct = np.zeros(max(TASKS) + 1)
        self.count = np.zeros(max(TASKS) + 1)

    def add(self, nll: torch.Tensor, correct: torch.Tensor, task: torch.Tensor) -> None:
        task = task.cpu().numpy()
        np.add.at(self.nll, task, nll.double().cpu().numpy())
        np.add.at(self.correct, task, correct.cpu().numpy())
        np.add.at(self.count, task, 1)

    def result(self) -> Metrics:
        n = self.count.sum()
        if n == 0:
            raise ValueError("no answers were scored")
        loss = self.nll.sum() / n
        per_task = {int(t): {"accuracy": self.correct[t] / self.count[t],
                             "perplexity": math.exp(self.nll[t] / self.count[t]),
                             "answers": int(self.count[t])}
                    for t in TASKS if self.count[t] > 0}
        return Metrics(loss=float(loss), accuracy=float(self.correct.sum() / n),
                       perplexity=math.exp(loss), answers=int(n), per_task=per_task)


@torch.no_grad()
def evaluate(model, data: EncodedStories, batch_size: int = 1, bptt: int = 200,
             device="cpu", seed: int = 1234) -> Metrics:
    """Stream the fixed story order from a zero state; metrics at answers."""
    was_training = model.training
    model.eval()
    sums = MetricSums()
    state = model.initial_state(batch_size)
    state = type(state)(*(s.to(device) for s in state))
    for batch in eval_segments(data, batch_size, bptt, seed):
        _, nll, correct, task, state = segment_loss(model, batch, state, "qa", device)
        sums.add(nll, correct, task)
    model.train(was_training)
    return sums.result()


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt", dir=folder)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
