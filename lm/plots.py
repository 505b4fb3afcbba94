"""Pictures of language-model results (imports matplotlib lazily)."""

from __future__ import annotations

import os

import numpy as np


def plot_token_losses(words: list[str], bits: dict[str, np.ndarray], out: str | os.PathLike,
                      title: str = "") -> None:
    """The paper's figure 6: per-token loss (bits) of two models as coloured cells, their
    difference (first minus second) below, the predicted words along the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(bits) != 2:
        raise ValueError(f"expects exactly two models, got {sorted(bits)}")
    (name_a, a), (name_b, b) = ((k, np.asarray(v, dtype=float)) for k, v in bits.items())
    if not len(words) == len(a) == len(b):
        raise ValueError(f"{len(words)} words but {len(a)} and {len(b)} losses")
    fig, (ax_loss, ax_diff) = plt.subplots(2, 1, figsize=(max(6.0, 0.32 * len(words)), 3.6),
                                           gridspec_kw={"height_ratios": [2, 1]})
    image = ax_loss.imshow(np.stack([a, b]), aspect="auto", cmap="Reds")
    ax_loss.set_yticks([0, 1], [name_a, name_b])
    ax_loss.set_xticks([])
    fig.colorbar(image, ax=ax_loss, label="bits", pad=0.01)
    diff = a - b
    lim = max(float(np.abs(diff).max()), 1e-6)
    image = ax_diff.imshow(diff[None], aspect="auto", cmap="RdBu", vmin=-lim, vmax=lim)
    ax_diff.set_yticks([0], [f"{name_a} - {name_b}"])
    ax_diff.set_xticks(range(len(words)), words, rotation=90, fontsize=8)
    fig.colorbar(image, ax=ax_diff, label="bits", pad=0.01)
    if title:
        ax_loss.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_validation_curves(runs: dict[str, str | os.PathLike], out: str | os.PathLike,
                           title: str = "") -> None:
    """Validation perplexity of language-model runs over epochs and over minutes of training,
    side by side; ``runs`` maps a label to a run folder (its ``progress.csv``)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for i, (label, run) in enumerate(runs.items()):
        path = os.path.join(run, "progress.csv")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: {run} is not a train_lm.py run folder")
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"{path} has no validation rows yet")
        epochs = [float(r["epoch"]) for r in rows]  # epochs done at each validation
        minutes = [float(r["seconds"]) / 60 for r in rows]
        ppl = [float(r["valid_perplexity"]) for r in rows]
        style = {"color": f"C{i}", "marker": "o", "markersize": 3, "label": label}
        by_epoch.plot(epochs, ppl, **style)
        by_time.plot(minutes, ppl, **style)
    by_epoch.set_xlabel("epochs of training")
    by_time.set_xlabel("minutes of training (validations included)")
    by_epoch.set_ylabel("validation perplexity (batch size 10)")
    by_epoch.set_yscale("log")
    from matplotlib.ticker import LogLocator, ScalarFormatter

    by_epoch.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    by_epoch.yaxis.set_major_formatter(ScalarFormatter())
    by_epoch.yaxis.set_minor_formatter(ScalarFormatter())
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
