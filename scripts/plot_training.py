"""Plot train and test reward curves of RecurrentA2C runs (the paper's figure 5) to a PNG, with
the random-policy floor and the graph-knowing shortest-path policy as horizontal lines.

Example::

    python scripts/plot_training.py runs/fwm32-s0 runs/lstm512-s0 --out docs/figure5.png

Reads ``RUN_DIR/progress.csv`` (written by ``scripts/train_agent.py``). The two reference lines
are measured here, not copied: ``--baseline-episodes`` episodes per graph on the test graphs.
"""

from __future__ import annotations

import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metro_pomdp.baselines import evaluate_policy_returns  # noqa: E402


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


def plot_runs(runs: list[str], out: str, labels: list[str] | None = None, x: str = "updates",
              baseline_episodes: int = 2) -> str:
    """Draw the train and test curves of ``runs`` side by side into the PNG ``out``."""
    labels = labels or [os.path.basename(os.path.normpath(r)) for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f"labels: {len(labels)} names for {len(runs)} runs")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, label) in enumerate(zip(runs, labels)):
        curve = read_eval_curve(run, f"eval/{x}")
        for ax, split in zip(axes, ("train", "test")):
            ax.plot(curve["x"], curve[split], color=colors[i % len(colors)], label=label)
    if baseline_episodes > 0:
        for policy, style in (("random", ":"), ("shortest_path", "--")):
            mean = evaluate_policy_returns(policy, "test", episodes=baseline_episodes).mean()
            for ax in axes:
                ax.axhline(mean, color="gray", linestyle=style,
                           label=f"{policy.replace('_', '-')} ({mean:.0f})")
    for ax, split in zip(axes, ("train", "test")):
        ax.set_title(f"{split} graphs")
        ax.set_xlabel({"updates": "updates", "timesteps": "env steps",
                       "minutes": "minutes of training (evaluations included)"}[x])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean reward per 30-step episode")
    axes[1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of scripts/train_agent.py")
    p.add_argument("--labels", nargs="*", default=None, help="legend names (default: folder names)")
    p.add_argument("--out", default="figure5.png", help="PNG to write")
    p.add_argument("--x", choices=["updates", "timesteps", "minutes"], default="updates",
                   help="x axis (minutes: the wall time SB3 logs, added up over resumes; use it "
                        "to compare runs with different numbers of envs)")
    p.add_argument("--baseline-episodes", type=int, default=2,
                   help="episodes per test graph for the random and shortest-path lines (0: none)")
    args = p.parse_args(argv)
    try:
        plot_runs(args.runs, args.out, args.labels, args.x, args.baseline_episodes)
    except ValueError as err:
        p.error(str(err))
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
