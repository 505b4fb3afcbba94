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
``--keep DIR`` copies what the comparison reads of each run (config.json, final.json,
evaluation.json and the evaluation rows of progress.csv, tens of KB) to DIR/<run folder name>,
small enough to commit; the comparison runs again from those copies.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
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


#: the columns of progress.csv that the comparison (agents.plots.read_eval_curve) reads
KEPT_COLUMNS = ("time/time_elapsed", "eval/updates", "eval/train_reward", "eval/test_reward")


def keep(run_dir: str, out_root: str) -> str:
    """Copy the files of ``run_dir`` that :func:`run_summary` reads to ``out_root/<name>``,
    progress.csv cut to its evaluation rows and :data:`KEPT_COLUMNS`; returns the copy."""
    out = os.path.join(out_root, os.path.basename(os.path.normpath(run_dir)))
    os.makedirs(out, exist_ok=True)
    for name in ("config.json", "final.json", "evaluation.json"):
        if os.path.exists(os.path.join(run_dir, name)):
            shutil.copyfile(os.path.join(run_dir, name), os.path.join(out, name))
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f_in, \
            open(os.path.join(out, "progress.csv"), "w", newline="") as f_out:
        writer = csv.DictWriter(f_out, KEPT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(row for row in csv.DictReader(f_in) if row.get("eval/test_reward"))
    return out


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
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="copy what the comparison reads of each run to DIR/<run folder name> "
                        "(tens of KB each: the evaluation rows of progress.csv, the JSON "
                        "files), to commit or share")
    args = p.parse_args(argv)
    try:
        runs = [run_summary(r) for r in args.runs]
    except (FileNotFoundError, ValueError, KeyError) as err:
        p.error(str(err))
    if args.keep:
        for run_dir in args.runs:
            print(f"kept {keep(run_dir, args.keep)}")
    cores: dict[str, list[dict]] = {}
    for run in runs:
        cores.setdefault(run["core"], []).append(run)
    table = {}
    columns = (["core", "parameters", "seeds", "train", "test", "gap"]
               + [f"minutes to {level:g}" for level in args.levels] + ["env-steps/s"])
    print("| " + " | ".join(columns) + " |")  # a Markdown table, as docs/results.md has it
    print("|" + "---|" * len(columns))
    for core, group in cores.items():
        row = {"parameters": sorted({r["parameters"] for r in group}),
               "seeds": sorted(r["seed"] for r in group)}
        cells = [core, "/".join(f"{n:,}" for n in row["parameters"]), str(len(group))]
        for split in ("train", "test"):
            values = [r["rewards"][split] for r in group]
            row[split] = {"mean": statistics.fmean(values), "min": min(values),
                          "max": max(values)}
            cells.append(f"{row[split]['mean']:.2f} [{min(values):.2f}, {max(values):.2f}]")
        row["gap"] = row["train"]["mean"] - row["test"]["mean"]
        cells.append(f"{row['gap']:.2f}")
        for level in args.levels:
            reached = [minutes_to(r["curve"], level) for r in group]
            row[f"minutes_to_{level:g}"] = reached
            done = [m for m in reached if m is not None]
            cells.append(f"{statistics.fmean(done):.1f}" if len(done) == len(reached)
                         else f"reached by {len(done)} of {len(reached)}")
        rates = [r["rate"] for r in group if r["rate"]]
        row["env_steps_per_s"] = statistics.fmean(rates) if rates else None
        cells.append(f"{row['env_steps_per_s']:,.0f}" if rates else "-")
        table[core] = row
        print("| " + " | ".join(cells) + " |")
    print("(rewards: mean over seeds [lowest, highest]; minutes: the mean over the seeds when "
          "all reached the level, else how many did)")
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
