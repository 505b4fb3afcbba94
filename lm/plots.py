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
