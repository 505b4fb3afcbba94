#!/usr/bin/env python
"""The result in two minutes: the shipped FWM and LSTM agents against the random and the
graph-knowing shortest-path policies, on the 600 training and the 600 held-out test graphs.

Prints the table (mean episode reward and its standard error; the agents' numbers equal their
model cards'), writes OUT/train_vs_test.png (the paper's figure-5 message: the FWM agent does
as well on graphs it never saw, the LSTM agent falls back) and OUT/fwm-test-graph<G>.gif, the
FWM agent on a test graph, and OUT/showcase.json.

Example:
    python scripts/showcase.py --out runs/showcase
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from agents import pretrained
from agents.evaluation import evaluate_splits
from agents.plots import plot_train_vs_test
from agents.watch import record_episodes, render_episodes
from metro_pomdp import render
from metro_pomdp.baselines import REFERENCE_EPISODES, REFERENCE_SEED, evaluate_policy_returns
from training.cli import HelpFormatter, add_machine_options, apply_machine_options

#: the shipped agents shown, in the table's order
AGENTS = ("fwm-32-16", "lstm-64")


def reference_row(policy: str) -> dict[str, tuple[float, float]]:
    """(mean, standard error) of a reference policy on both splits, the protocol of
    :func:`metro_pomdp.baselines.reference_returns`."""
    row = {}
    for split in ("train", "test"):
        returns = evaluate_policy_returns(policy, split, episodes=REFERENCE_EPISODES,
                                          seed=REFERENCE_SEED).ravel()
        row[split] = (float(returns.mean()), float(returns.std(ddof=1) / returns.size ** 0.5))
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/showcase"),
                        help="output folder")
    parser.add_argument("--episodes", type=int, default=10,
                        help="episodes per graph for the agents, as on their model cards")
    parser.add_argument("--gif-graph", type=int, default=0,
                        help="the test graph of the GIF (0-599)")
    add_machine_options(parser, device=None, keep_memory=False, threads=1, threads_help=(
        "torch CPU threads; the agents' small matrix products run fastest on one"))
    args = parser.parse_args(argv)
    apply_machine_options(parser, args)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if not 0 <= args.gif_graph < 600:
        parser.error(f"--gif-graph must lie in [0, 600), got {args.gif_graph}")
    start = time.perf_counter()
    rows, agents, ticks = {}, {}, {}
    print(f"{'policy':<32}{'train':>14}{'test':>14}")
    for name in AGENTS:
        card = pretrained.card(name)
        agents[name] = model = pretrained.load(name)
        result = evaluate_splits(model, {"train": card["env_id"], "test": card["test_env_id"]},
                                 args.episodes, modes=("sampled",), seed=0)
        rows[name] = {s: (result[f"sampled/{s}"]["mean"], result[f"sampled/{s}"]["stderr"])
                      for s in ("train", "test")}
        _print_row(f"{name} ({card['parameters']:,} params)", rows[name])
        ticks[name] = f"{name}\n{card['parameters']:,} params"
    for policy, label in (("random", "random"), ("shortest_path", "shortest path (knows graph)")):
        rows[label] = reference_row(policy)
        _print_row(label, rows[label])
    ticks["shortest path (knows graph)"] = "shortest path\n(knows the graph)"
    print(f"(mean episode reward ± standard error; agents: {args.episodes} sampled episodes "
          f"per graph, references: {REFERENCE_EPISODES}; 600 graphs per split)")
    picture = plot_train_vs_test(
        rows, str(args.out / "train_vs_test.png"),
        "MetroPOMDP: reward on the 600 training graphs and on 600 graphs never seen",
        note=f"Each bar: mean reward of 30-step episodes, labelled mean ± one standard error "
             f"(black error bars, about a pixel at this scale). Agents: {args.episodes} "
             f"sampled episodes on each of the 600 graphs per split ({600 * args.episodes:,}); "
             f"reference policies: {REFERENCE_EPISODES} ({600 * REFERENCE_EPISODES:,}).",
        labels=ticks)
    episode = record_episodes(agents[AGENTS[0]], "MetroPOMDP-Test-v0", [args.gif_graph])
    gif = render.save_animation(render_episodes(episode),
                                args.out / f"fwm-test-graph{args.gif_graph}.gif")
    seconds = time.perf_counter() - start
    summary = {"rows": {k: {s: {"mean": v[s][0], "stderr": v[s][1]} for s in v}
                        for k, v in rows.items()},
               "episodes_per_graph": args.episodes, "seconds": round(seconds, 1)}
    (args.out / "showcase.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {picture}, {gif} (reward {episode[0].total:.2f} in that episode) and "
          f"{args.out / 'showcase.json'}; {seconds:.0f} s")
    return summary


def _print_row(label: str, row: dict[str, tuple[float, float]]) -> None:
    print(f"{label:<32}" + "".join(f"{row[s][0]:>8.2f} ± {row[s][1]:<4.2f}"
                                   for s in ("train", "test")), flush=True)


if __name__ == "__main__":
    main()
