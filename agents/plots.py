"""Learning curves of RecurrentA2C runs (the paper's figure 5): train and test reward of each
run folder written by ``scripts/train_agent.py``, with the reference policies as lines."""

from __future__ import annotations

import csv
import json
import os

import matplotlib
from matplotlib.figure import Figure

from metro_pomdp import registered_config
from metro_pomdp.baselines import reference_returns


def read_eval_curve(run_dir: str, x_key: str = "eval/updates") -> dict[str, list[float]]:
    """``{"x": [...], "train": [...], "test": [...]}`` from the rows of ``progress.csv`` that
    hold an evaluation."""
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir}: no progress.csv (not a train_agent.py run folder?)")
    curve: dict[str, list[float]] = {"x": [], "train": [], "test": []}
    offset = last = 0.0  # minutes: SB3's time/time_elapsed restarts at 0 when a run resumes
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("eval/test_reward"):
                continue
            if x_key == "eval/minutes":
                # the evaluation before the first update may be logged without a time
                seconds = row.get("time/time_elapsed") or (
                    "0" if float(row["eval/updates"]) == 0 else None)
                if seconds is None:
                    continue  # an evaluation logged without a time: no point on this axis
                elapsed = float(seconds) / 60
                if elapsed < last:
                    offset += last
                last = elapsed
                curve["x"].append(offset + elapsed)
            else:
                curve["x"].append(float(row[x_key]))
            curve["train"].append(float(row["eval/train_reward"]))
            curve["test"].append(float(row["eval/test_reward"]))
    if not curve["x"]:
        raise ValueError(f"{path}: no evaluation rows (eval/test_reward is empty everywhere)")
    return curve


def run_env_sizes(run_dir: str) -> tuple[int, int] | None:
    """``(n_states, n_actions)`` of the registered MetroPOMDP env a run trained on (its
    ``config.json``), or None for another env or a folder without a config."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        config = registered_config(json.load(f).get("env_id"))
    return None if config is None else (config.n_states, config.n_actions)


def plot_runs(runs: list[str], out: str, labels: list[str] | None = None, x: str = "updates",
              references: bool = True) -> str:
    """Draw the train and test curves of ``runs`` side by side into the PNG ``out``.

    With ``references``, each panel also shows the random and the graph-knowing shortest-path
    policy on that panel's graphs (:func:`metro_pomdp.baselines.reference_returns`, for the
    graph size of the first run's env; none for an env outside the MetroPOMDP family)."""
    labels = labels or [os.path.basename(os.path.normpath(r)) for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f"labels: {len(labels)} names for {len(runs)} runs")
    # a Figure without pyplot: no global backend or figure state is touched
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, label) in enumerate(zip(runs, labels)):
        curve = read_eval_curve(run, f"eval/{x}")
        for ax, split in zip(axes, ("train", "test")):
            ax.plot(curve["x"], curve[split], color=colors[i % len(colors)], label=label)
    sizes = run_env_sizes(runs[0]) if references else None
    if sizes is not None:
        for ax, split in zip(axes, ("train", "test")):
            values = reference_returns(split, *sizes)
            for policy, style in (("random", ":"), ("shortest_path", "--")):
                ax.axhline(values[policy], color="gray", linestyle=style,
                           label=f"{policy.replace('_', '-')} ({values[policy]:.1f})")
    for ax, split in zip(axes, ("train", "test")):
        ax.set_title(f"{split} graphs")
        ax.set_xlabel({"updates": "updates", "timesteps": "env steps",
                       "minutes": "minutes of training (evaluations included)"}[x])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean reward per 30-step episode")
    for ax in axes:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def plot_train_vs_test(rows: dict[str, dict[str, tuple[float, float]]], out: str,
                       title: str = "") -> str:
    """Bars of train and test reward per policy, the paper's figure-5 comparison as one picture:
    an agent that generalises has equal bars, one that overfits a taller train bar.

    Args:
        rows: policy label -> ``{"train": (mean, stderr), "test": (mean, stderr)}``.
        out: PNG path.
        title: figure title.

    Returns:
        ``out``.
    """
    import numpy as np

    labels = list(rows)
    x = np.arange(len(labels))
    fig = Figure(figsize=(1.6 * len(labels) + 2, 4.2), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    for k, (split, colour) in enumerate((("train", "#90a4ae"), ("test", "#1e88e5"))):
        means = [rows[p][split][0] for p in labels]
        errors = [rows[p][split][1] for p in labels]
        bars = ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=errors, capsize=3, color=colour,
                      label=f"{split} graphs")
        ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_ylabel("mean episode reward")
    ax.set_ylim(0, max(rows[p][s][0] for p in labels for s in ("train", "test")) * 1.15)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    return out
