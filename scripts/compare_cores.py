"""Compare memory cores on MetroPOMDP from train_agent.py run folders: a table (core,
parameters, seeds, train and test reward with their spread, the train-test gap, minutes to
reach two test levels, env-steps/s) and a figure of test reward over wall time, one line per
core (mean over its seeds, a band from the lowest to the highest seed), with the random and
shortest-path levels.

Example::

    python scripts/compare_cores.py runs/cores/*-s* --levels 80 95 --out docs/cores.png

Runs are grouped by the core of their config.json; the final rewards are those of
evaluate_agent.py (RUN_DIR/evaluation.json, sampled actions) where it has run, else the last
training evaluation (RUN_DIR/final.json). Add a run folder of your own core and run it again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import numpy as np

from agents.plots import read_eval_curve
from metro_pomdp.baselines import reference_returns
from training.cli import HelpFormatter, positive_float


def run_summary(run_dir: str) -> dict:
    """One run's core, parameters, seed, final rewards, curve over minutes and rate."""
    paths = {name: os.path.join(run_dir, name)
             for name in ("config.json", "final.json", "evaluation.json")}
    for name in ("config.json", "final.json"):
        if not os.path.exists(paths[name]):
            raise FileNotFoundError(f"{paths[name]} not found: {run_dir} is not a finished "
                                    f"train_agent.py run")
    with open(paths["config.json"]) as f:
        config = json.load(f)
    with open(paths["final.json"]) as f:
        final = json.load(f)
    rewards = {"train": final["train_reward"], "test": final["test_reward"]}
    if os.path.exists(paths["evaluation.json"]):
        with open(paths["evaluation.json"]) as f:
            evaluation = json.load(f)
        if "sampled/test" in evaluation:
            rewards = {s: evaluation[f"sampled/{s}"]["mean"] for s in ("train", "test")}
    return {"core": config["core"], "hidden": config["hidden"], "seed": config["seed"],
            "parameters": final["parameters"], "rewards": rewards,
            "rate": final.get("env_steps_per_s_incl_eval"),
            "curve": read_eval_curve(run_dir, "eval/minutes")}


def minutes_to(curve: dict, level: float) -> float | None:
    """The first minute at which the test reward reached ``level`` (None: never)."""
    for x, y in zip(curve["x"], curve["test"]):
        if y >= level:
            return x
    return None


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="finished train_agent.py run folders")
    p.add_argument("--levels", type=positive_float, nargs="+", default=[80.0, 95.0],
                   help="test rewards whose first minute is reported")
    p.add_argument("--out", default="cores.png", help="the figure (PNG)")
    p.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args(argv)
    try:
        runs = [run_summary(r) for r in args.runs]
    except (FileNotFoundError, ValueError, KeyError) as err:
        p.error(str(err))
    cores: dict[str, list[dict]] = {}
    for run in runs:
        cores.setdefault(run["core"], []).append(run)
    table = {}
    header = (f"{'core':<20}{'params':>8}{'seeds':>6}{'train':>22}{'test':>22}{'gap':>7}"
              + "".join(f"{'min to ' + format(level, 'g'):>11}" for level in args.levels)
              + f"{'steps/s':>10}")
    print(header)
    for core, group in cores.items():
        row = {"parameters": sorted({r["parameters"] for r in group}),
               "seeds": sorted(r["seed"] for r in group)}
        line = f"{core:<20}{group[0]['parameters']:>8,}{len(group):>6}"
        for split in ("train", "test"):
            values = [r["rewards"][split] for r in group]
            row[split] = {"mean": statistics.fmean(values), "min": min(values),
                          "max": max(values)}
            line += f"{row[split]['mean']:.2f} [{min(values):.2f}-{max(values):.2f}]".rjust(22)
        row["gap"] = row["train"]["mean"] - row["test"]["mean"]
        line += f"{row['gap']:>7.2f}"
        for level in args.levels:
            reached = [minutes_to(r["curve"], level) for r in group]
            row[f"minutes_to_{level:g}"] = reached
            done = [m for m in reached if m is not None]
            text = (f"{statistics.fmean(done):.1f}" if len(done) == len(reached)
                    else f"{len(done)}/{len(reached)}")
            line += f"{text:>11}"
        rates = [r["rate"] for r in group if r["rate"]]
        row["env_steps_per_s"] = statistics.fmean(rates) if rates else None
        line += f"{row['env_steps_per_s'] or float('nan'):>10,.0f}"
        table[core] = row
        print(line)
    print("(rewards: mean over seeds [lowest-highest]; minutes: mean over the seeds that "
          "reached the level, or how many did)")
    plot(cores, args.out)
    print(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)
    return table


def plot(cores: dict[str, list[dict]], out: str) -> None:
    """Test reward over minutes per core: the mean over seeds on a common grid, a band from
    the lowest to the highest seed, and the reference levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (core, group) in enumerate(cores.items()):
        end = min(max(r["curve"]["x"]) for r in group)
        grid = np.linspace(0, end, 200)
        ys = np.stack([np.interp(grid, r["curve"]["x"], r["curve"]["test"]) for r in group])
        ax.plot(grid, ys.mean(0), color=f"C{i}",
                label=f"{core} ({group[0]['parameters']:,} params, {len(group)} "
                      f"seed{'s' if len(group) > 1 else ''})")
        if len(group) > 1:
            ax.fill_between(grid, ys.min(0), ys.max(0), color=f"C{i}", alpha=0.2)
    levels = reference_returns("test")
    for policy, style in (("random", ":"), ("shortest_path", "--")):
        ax.axhline(levels[policy], color="gray", linestyle=style,
                   label=f"{policy.replace('_', ' ')} ({levels[policy]:.1f})")
    ax.set_xlabel("minutes of training (evaluations included)")
    ax.set_ylabel("test reward (600 held-out graphs)")
    ax.set_title("MetroPOMDP: memory cores at equal parameters", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
