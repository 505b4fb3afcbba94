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
    low, high = float("inf"), float("-inf")
    for i, (run, label) in enumerate(zip(runs, labels)):
        curve = read_eval_curve(run, f"eval/{x}")
        for ax, split in zip(axes, ("train", "test")):
            ax.plot(curve["x"], curve[split], color=colors[i % len(colors)], label=label)
            low, high = min(low, *curve[split]), max(high, *curve[split])
    sizes = run_env_sizes(runs[0]) if references else None
    if sizes is not None:
        for ax, split in zip(axes, ("train", "test")):
            values = reference_returns(split, *sizes)
            low, high = min(low, values["random"]), max(high, values["random"])
            for policy, style in (("random", ":"), ("shortest_path", "--")):
                ax.axhline(values[policy], color="gray", linestyle=style,
                           label=f"{policy.replace('_', '-')} ({values[policy]:.1f})")
        # the axis spans the curves and the random level; the shortest-path level (about 171)
        # joins it once the curves come within a quarter of it, so that early learning is not
        # squashed onto the random line
        best = max(reference_returns(s, *sizes)["shortest_path"] for s in ("train", "test"))
        if best <= high * 1.25:
            high = best
        pad = 0.08 * (high - low) if high > low else 1.0
        axes[0].set_ylim(low - pad, high + pad)
        if best > high + pad:
            for ax in axes:
                ax.text(0.99, 0.99, f"shortest path ({best:.1f}) is above this axis",
                        transform=ax.transAxes, ha="right", va="top", fontsize=7,
                        color="gray")
    for ax, split in zip(axes, ("train", "test")):
        ax.set_title(f"{split} graphs")
        ax.set_xlabel({"updates": "updates", "timesteps": "env steps",
                       "minutes": "minutes of training (evaluations included)"}[x])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean reward per 30-step episode")
    for ax in axes:
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(labels[0] if len(labels) == 1 else ", ".join(labels), fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def plot_train_vs_test(rows: dict[str, dict[str, tuple[float, float]]], out: str,
                       title: str = "", note: str = "",
                       labels: dict[str, str] | None = None) -> str:
    """Bars of train and test reward per policy, the paper's figure-5 comparison as one picture:
    an agent that generalises has equal bars, one that overfits a taller train bar. Each bar
    is labelled ``mean ± standard error``, and its standard error drawn as a black error bar
    (on a scale of 170 a standard error of 0.35 is about a pixel: the label says it).

    Args:
        rows: policy -> ``{"train": (mean, stderr), "test": (mean, stderr)}``.
        out: PNG path.
        title: figure title.
        note: a line under the axes saying what the error bars are (episodes and graphs).
        labels: policy -> the tick label (e.g. with its parameter count; default: the key).

    Returns:
        ``out``.
    """
    import numpy as np

    policies = list(rows)
    ticks = [(labels or {}).get(p, p) for p in policies]
    x = np.arange(len(policies))
    fig = Figure(figsize=(1.9 * len(policies) + 2, 4.8), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    for k, (split, colour) in enumerate((("train", "#90a4ae"), ("test", "#1e88e5"))):
        means = [rows[p][split][0] for p in policies]
        errors = [rows[p][split][1] for p in policies]
        bars = ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=errors, color=colour,
                      label=f"{split} graphs",
                      error_kw={"ecolor": "black", "elinewidth": 1.5, "capsize": 5,
                                "capthick": 1.5})
        ax.bar_label(bars, labels=[f"{m:.1f}\n± {e:.2f}" for m, e in zip(means, errors)],
                     fontsize=7, padding=2)
    ax.set_xticks(x, ticks, fontsize=9)
    ax.set_ylabel("mean episode reward")
    ax.set_ylim(0, max(rows[p][s][0] for p in policies for s in ("train", "test")) * 1.2)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    if note:
        fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=7.5, color="#424242",
                 wrap=True)
    fig.tight_layout(rect=(0, 0.07 if note else 0, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    return out
