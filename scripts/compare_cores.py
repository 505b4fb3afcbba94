"""Compare memory cores from run folders, on MetroPOMDP (train_agent.py runs) or catbAbI
(train_catbabi.py runs): Markdown tables and a figure.

MetroPOMDP: core, parameters, seeds, train and test reward with their spread, the train-test
gap, the minutes to reach two test levels, env-steps/s; the figure is test reward over wall
time, one line per core (mean over its seeds, a band from the lowest to the highest seed), with
the random and shortest-path levels. catbAbI: model, parameters, seeds, minutes, steps, the
best checkpoint's validation accuracy, test accuracy at batch size 1, the tasks under 95% (the
bAbI convention for a failed task), tokens/s, and a per-task table; the figure is validation
accuracy over wall time beside the per-task test accuracy.

Examples::

    python scripts/compare_cores.py runs/cores/*-s* --levels 80 95 --out docs/cores.png
    python scripts/compare_cores.py runs/catbabi-* --out catbabi_cores.png

Runs are grouped by their core (``--model`` for catbAbI), listed in the order of the registry
(``memory.core_names()``, a core of your own after them), each registered core in the same
colour in every figure; all runs of one call are of one benchmark. MetroPOMDP's final rewards
are those of evaluate_agent.py (RUN_DIR/evaluation.json, sampled actions) where it has run,
else the last training evaluation (RUN_DIR/final.json);
catbAbI's are RUN_DIR/test.json's (the final evaluation of train_catbabi.py). Add a run folder
of your own core and run it again. ``--keep DIR`` copies what the comparison reads of each run
(the JSON files and the rows of progress.csv that it plots, tens of KB) to DIR/<run folder
name>, small enough to commit; the comparison runs again from those copies.
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
from memory import core_names
from metro_pomdp.baselines import reference_returns
from qa.data import TASKS
from qa.models import core_model_name
from qa.plots import read_progress
from training.cli import HelpFormatter, positive_float

#: a bAbI task counts as failed under this test accuracy (the convention since Weston et al.)
PASS_ACCURACY = 0.95


def run_kind(run_dir: str) -> str:
    """``"metro"`` for a train_agent.py run folder, ``"catbabi"`` for a train_catbabi.py one."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a finished train_agent.py "
                                f"or train_catbabi.py run")
    with open(path) as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}): restore it from a copy") from None
    if "core" in config:
        return "metro"
    if "model" in config.get("args", {}):
        return "catbabi"
    raise ValueError(f"{path} is neither a train_agent.py nor a train_catbabi.py config")


def run_summary(run_dir: str) -> dict:
    """One MetroPOMDP run's core, parameters, seed, final rewards, curve over minutes and rate."""
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


def catbabi_summary(run_dir: str) -> dict:
    """One catbAbI run's model, parameters, seed, test result (test.json), validation curve over
    minutes and training rate (tokens/s, validations included)."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    test_path = os.path.join(run_dir, "test.json")
    if not os.path.exists(test_path):
        raise FileNotFoundError(
            f"{test_path} not found: {run_dir} has no final evaluation; run train_catbabi.py "
            f"--eval-only --run-dir {run_dir} (with the run's --model and options)")
    with open(test_path) as f:
        result = json.load(f)
    progress = read_progress(os.path.join(run_dir, "progress.csv"))  # one row a validation
    minutes, offset, last = [], 0.0, 0.0  # seconds restart at 0 when a run resumes
    for seconds in progress["seconds"]:
        if seconds < last:
            offset += last
        last = seconds
        minutes.append((offset + seconds) / 60)
    curve = {"x": minutes, "valid": progress["valid_accuracy"].tolist(),
             "step": progress["step"].astype(int).tolist()}
    args, train = config["args"], config["train"]
    tokens = curve["step"][-1] * train["batch_size"] * train["bptt"]
    test = result["test"]
    return {"core": args["model"], "hidden": args.get("hidden_size"), "seed": args["seed"],
            "parameters": config["parameters"], "minutes": curve["x"][-1],
            "steps": curve["step"][-1], "best_step": result["best_step"],
            "valid": result["valid"]["accuracy"], "test": test["accuracy"],
            "test_perplexity": test["perplexity"],
            "per_task": {int(t): m["accuracy"] for t, m in test["per_task"].items()},
            "rate": tokens / (curve["x"][-1] * 60) if curve["x"][-1] > 0 else None,
            "curve": curve}


#: the columns of progress.csv that the comparison reads, per benchmark
KEPT_COLUMNS = {"metro": ("time/time_elapsed", "eval/updates", "eval/train_reward",
                          "eval/test_reward"),
                "catbabi": ("step", "seconds", "valid_accuracy", "valid_loss")}
KEPT_FILES = {"metro": ("config.json", "final.json", "evaluation.json"),
              "catbabi": ("config.json", "test.json")}


def keep(run_dir: str, out_root: str, kind: str = "metro") -> str:
    """Copy the files of ``run_dir`` that the comparison reads to ``out_root/<name>``,
    progress.csv cut to the rows and :data:`KEPT_COLUMNS` it reads; returns the copy."""
    out = os.path.join(out_root, os.path.basename(os.path.normpath(run_dir)))
    if os.path.exists(out) and os.path.samefile(out, run_dir):
        return out  # a kept copy already (rewriting progress.csv in place would empty it)
    os.makedirs(out, exist_ok=True)
    for name in KEPT_FILES[kind]:
        if os.path.exists(os.path.join(run_dir, name)):
            shutil.copyfile(os.path.join(run_dir, name), os.path.join(out, name))
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f_in, \
            open(os.path.join(out, "progress.csv"), "w", newline="") as f_out:
        writer = csv.DictWriter(f_out, KEPT_COLUMNS[kind], extrasaction="ignore")
        writer.writeheader()
        rows = csv.DictReader(f_in)
        writer.writerows(rows if kind == "catbabi"
                         else (row for row in rows if row.get("eval/test_reward")))
    return out


def minutes_to(curve: dict, level: float) -> float | None:
    """The first minute at which the test reward reached ``level`` (None: never)."""
    for x, y in zip(curve["x"], curve["test"]):
        if y >= level:
            return x
    return None


def spread(values: list[float], fmt: str) -> str:
    """``mean [lowest, highest]``, or the value alone for one seed."""
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{format(statistics.fmean(values), fmt)} [{format(min(values), fmt)}, "
            f"{format(max(values), fmt)}]")


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    """A Markdown table, as docs/results.md has them."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def metro_table(cores: dict[str, list[dict]], levels: list[float]) -> dict:
    table, rows = {}, []
    for core, group in cores.items():
        row = {"parameters": sorted({r["parameters"] for r in group}),
               "seeds": sorted(r["seed"] for r in group)}
        cells = [core, "/".join(f"{n:,}" for n in row["parameters"]), str(len(group))]
        for split in ("train", "test"):
            values = [r["rewards"][split] for r in group]
            row[split] = {"mean": statistics.fmean(values), "min": min(values),
                          "max": max(values)}
            cells.append(spread(values, ".2f"))
        row["gap"] = row["train"]["mean"] - row["test"]["mean"]
        cells.append(f"{row['gap']:.2f}")
        for level in levels:
            reached = [minutes_to(r["curve"], level) for r in group]
            row[f"minutes_to_{level:g}"] = reached
            done = [m for m in reached if m is not None]
            cells.append(f"{statistics.fmean(done):.1f}" if len(done) == len(reached)
                         else "never" if not done
                         else f"reached by {len(done)} of {len(reached)}")
        rates = [r["rate"] for r in group if r["rate"]]
        row["env_steps_per_s"] = statistics.fmean(rates) if rates else None
        cells.append(f"{row['env_steps_per_s']:,.0f}" if rates else "-")
        table[core] = row
        rows.append(cells)
    print_table(["core", "parameters", "seeds", "train", "test", "gap"]
                + [f"minutes to {level:g}" for level in levels] + ["env-steps/s"], rows)
    print("(rewards: mean over seeds [lowest, highest] where there are several; minutes: the "
          "mean over the seeds when all reached the level, else how many did, or never)")
    return table


def catbabi_table(cores: dict[str, list[dict]]) -> dict:
    table, rows, task_rows = {}, [], []
    for core, group in cores.items():
        per_task = {t: statistics.fmean(r["per_task"].get(t, float("nan")) for r in group)
                    for t in TASKS}
        row = {"parameters": sorted({r["parameters"] for r in group}),
               "seeds": sorted(r["seed"] for r in group),
               "minutes": statistics.fmean(r["minutes"] for r in group),
               "steps": [r["steps"] for r in group],
               "valid": [r["valid"] for r in group], "test": [r["test"] for r in group],
               "per_task": per_task,
               "failed": [t for t in TASKS if not per_task[t] >= PASS_ACCURACY]}
        rates = [r["rate"] for r in group if r["rate"]]
        row["tokens_per_s"] = statistics.fmean(rates) if rates else None
        table[core] = row
        rows.append([core, "/".join(f"{n:,}" for n in row["parameters"]), str(len(group)),
                     f"{row['minutes']:.1f}", spread(row["steps"], ",.0f"),
                     spread([100 * v for v in row["valid"]], ".2f"),
                     spread([100 * v for v in row["test"]], ".2f"),
                     f"{len(row['failed'])}: {', '.join(map(str, row['failed'])) or '-'}",
                     f"{row['tokens_per_s']:,.0f}" if rates else "-"])
        task_rows.append([core] + [f"{100 * per_task[t]:.1f}" for t in TASKS])
    print_table(["model", "parameters", "seeds", "minutes", "steps", "valid %", "test %",
                 f"tasks under {PASS_ACCURACY:.0%}", "tokens/s"], rows)
    print("(valid: the tested checkpoint's, the lowest validation loss; test: batch size 1; "
          "mean over seeds [lowest, highest]; tokens/s: training tokens over the minutes to "
          "the last validation, validations included)\n")
    print("Test accuracy per task (%):\n")
    print_table(["model"] + [str(t) for t in TASKS], task_rows)
    return table


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+",
                   help="finished run folders: all of train_agent.py (MetroPOMDP) or all of "
                        "train_catbabi.py (catbAbI, with test.json)")
    p.add_argument("--levels", type=positive_float, nargs="+", default=[80.0, 95.0],
                   help="MetroPOMDP: test rewards whose first minute is reported")
    p.add_argument("--out", default="cores.png", help="the figure (PNG)")
    p.add_argument("--json", default=None, help="also write the table here")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="copy what the comparison reads of each run to DIR/<run folder name> "
                        "(tens of KB each: the rows of progress.csv it reads, the JSON files), "
                        "to commit or share")
    args = p.parse_args(argv)
    try:
        kinds = {r: run_kind(r) for r in args.runs}
        if len(set(kinds.values())) > 1:
            first = args.runs[0]
            other = next(r for r in args.runs if kinds[r] != kinds[first])
            raise ValueError(f"{first} is a {kinds[first]} run and {other} a {kinds[other]} "
                             f"run: compare the runs of one benchmark at a time")
        kind = kinds[args.runs[0]]
        summary = run_summary if kind == "metro" else catbabi_summary
        runs = [summary(r) for r in args.runs]
    except (FileNotFoundError, ValueError, KeyError) as err:
        p.error(str(err))
    if args.keep:
        for run_dir in args.runs:
            print(f"kept {keep(run_dir, args.keep, kind)}")
    cores: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: registry_rank(r["core"])):
        cores.setdefault(run["core"], []).append(run)
    if kind == "metro":
        table = metro_table(cores, args.levels)
        plot(cores, args.out)
    else:
        table = catbabi_table(cores)
        plot_catbabi(cores, table, args.out)
    print(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)
    return table


def registry_rank(name: str) -> int:
    """A core's place among the registered ones, under its own name or its catbAbI model name
    (:func:`qa.models.core_model_name`: ``lstm-core`` for ``lstm``); a core not registered
    comes after them all."""
    registered = core_names()
    for rank, core in enumerate(registered):
        if name in (core, core_model_name(core)):
            return rank
    return len(registered)


def core_colours(names) -> dict[str, str]:
    """One matplotlib colour per core name, fixed by its place in the registry so that a core
    has the same colour in every figure; unregistered names (and a second name for one
    registered core) take the colours after the registered ones, in the order given."""
    colours, taken = {}, set()
    spare = len(core_names())
    for name in names:
        rank = registry_rank(name)
        if rank == len(core_names()) or rank in taken:
            rank, spare = spare, spare + 1
        taken.add(rank)
        colours[name] = f"C{rank}"
    return colours


def draw_seed_bands(ax, cores: dict[str, list[dict]], key: str, scale: float = 1.0,
                    start: float | None = None) -> None:
    """One line per core on ``ax``: ``curve[key]`` over minutes, the mean over its seeds on a
    common grid (from ``start``, by default the last seed's first point, to the first seed's
    last), and a band from the lowest to the highest seed."""
    colours = core_colours(cores)
    for core, group in cores.items():
        first = max(r["curve"]["x"][0] for r in group) if start is None else start
        end = min(r["curve"]["x"][-1] for r in group)
        grid = np.linspace(first, end, 200)
        ys = scale * np.stack([np.interp(grid, r["curve"]["x"], r["curve"][key])
                               for r in group])
        seeds = f"{len(group)} seed{'s' if len(group) > 1 else ''}"
        ax.plot(grid, ys.mean(0), color=colours[core],
                label=f"{core} ({group[0]['parameters']:,} params, {seeds})")
        if len(group) > 1:
            ax.fill_between(grid, ys.min(0), ys.max(0), color=colours[core], alpha=0.2)


def plot(cores: dict[str, list[dict]], out: str) -> None:
    """Test reward over minutes per core: the mean over seeds on a common grid, a band from
    the lowest to the highest seed, and the reference levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    draw_seed_bands(ax, cores, "test", start=0.0)  # MetroPOMDP evaluates before training
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


def plot_catbabi(cores: dict[str, list[dict]], table: dict, out: str) -> None:
    """Validation accuracy over minutes per model (mean over seeds on a common grid, a band
    from the lowest to the highest seed) beside a model x task grid of the test accuracy of
    ``table`` (:func:`catbabi_table`'s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, grid_ax) = plt.subplots(1, 2, figsize=(13, 4.6),
                                      gridspec_kw={"width_ratios": [1, 1.5]})
    draw_seed_bands(ax, cores, "valid", scale=100)
    ax.set_xlabel("minutes of training (validations included)")
    ax.set_ylabel("validation answer accuracy (%)")
    ax.set_title("catbAbI (QA mode): validation over wall time", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    names = list(table)
    acc = 100 * np.array([[table[core]["per_task"][t] for t in TASKS] for core in names])
    image = grid_ax.imshow(acc, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (row, col), value in np.ndenumerate(acc):
        failed = not value >= 100 * PASS_ACCURACY
        grid_ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=7,
                     color="white" if value < 60 else "black",
                     fontweight="bold" if failed else "normal")
    grid_ax.set_xticks(range(len(TASKS)), [str(t) for t in TASKS], fontsize=8)
    grid_ax.set_yticks(range(len(names)), names, fontsize=8)
    grid_ax.set_xlabel("bAbI task")
    grid_ax.set_title(f"test accuracy per task (%, batch size 1; bold: under "
                      f"{PASS_ACCURACY:.0%}, a failed task)", fontsize=10)
    fig.colorbar(image, ax=grid_ax, fraction=0.03, pad=0.02)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
