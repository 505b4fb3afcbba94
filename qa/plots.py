"""catbAbI pictures (imports matplotlib lazily): learning curves (paper figure 2), per-task
test accuracy (figures 17-18) and read-query / write-key similarities (figure 3)."""

from __future__ import annotations

import csv
import os
import warnings

import numpy as np

from qa.data import TASKS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_progress(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a trainer's ``progress.csv`` as float arrays."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def plot_learning_curves(runs: dict[str, str | os.PathLike], out: str | os.PathLike) -> None:
    """Validation accuracy (answers, all tasks) and training accuracy over steps, one line pair
    per run; ``runs`` maps a label to a ``progress.csv``. A run with a single validation (no
    line to draw) is drawn as dots, with a warning that says so."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (label, path) in enumerate(runs.items()):
        p = read_progress(path)
        color = f"C{i}"
        dots = len(p["step"]) < 2
        if dots:
            warnings.warn(f"{path}: one validation (step {p['step'][0]:.0f}), so {label!r} is "
                          f"a dot, not a curve; a run validates every --eval-every steps "
                          f"(default 1000)", stacklevel=2)
        marker = {"marker": "o", "markersize": 6} if dots else {}
        ax.plot(p["step"], p["valid_accuracy"], color=color, label=f"{label} valid", **marker)
        ax.plot(p["step"], p["train_accuracy"], color=color, ls="--", alpha=0.6,
                label=f"{label} train", **{**marker, "marker": "s"} if dots else {})
    ax.set_xlabel("training step")
    ax.set_ylabel("answer accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_per_task(results: dict[str, dict], out: str | os.PathLike) -> None:
    """Test accuracy per task as grouped bars; ``results`` maps a label to the ``test`` entry
    of a ``test.json`` (with ``per_task``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / max(len(results), 1)
    for i, (label, test) in enumerate(results.items()):
        acc = [test["per_task"].get(str(t), test["per_task"].get(t, {})).get("accuracy", np.nan)
               for t in TASKS]
        ax.bar(np.array(TASKS) + (i - (len(results) - 1) / 2) * width, acc, width,
               label=f"{label} ({test['accuracy']:.1%} overall)")
    ax.set_xticks(TASKS)
    ax.set_xlabel("bAbI task")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_key_similarities(words: list[str], sims: np.ndarray, out: str | os.PathLike,
                          title: str = "") -> None:
    """Figure 3: rows = read queries at the last position, columns = the write keys of the
    positions whose input words are below."""
    plt = _pyplot()
    sims = np.asarray(sims)
    if sims.ndim != 2 or sims.shape[1] != len(words):
        raise ValueError(f"sims must be [N_r, {len(words)}], got {sims.shape}")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(words)), 1.2 + 0.45 * len(sims)))
    lim = max(float(np.abs(sims).max()), 1e-6)
    image = ax.imshow(sims, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_yticks(range(len(sims)), [f"read {i + 1}" for i in range(len(sims))])
    ax.set_xticks(range(len(words)), words, rotation=90, fontsize=8)
    fig.colorbar(image, ax=ax, label="query . write key", pad=0.01)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
