#!/usr/bin/env python
"""Watch a trained agent play: episodes on chosen train or test graphs as an animated GIF
(or MP4, where ffmpeg is installed).

AGENT is a shipped agent's name (``agents.pretrained.available()``: fwm-32-16, lstm-64) or a
train_agent.py run folder. Each frame shows the graph, the agent (green) and the reward
(yellow), the last action and the edge it took (red) or that it was invalid, the step reward,
the running total and t/30; an arrival at the reward has its own frame before agent and
reward are placed anew.

Examples:
    python scripts/watch_agent.py fwm-32-16 --split test --graphs 0 1 --out runs/watch/fwm.gif
    python scripts/watch_agent.py runs/fwm32-s0 --episodes 2 --greedy
"""

from __future__ import annotations

import argparse
import pathlib
import time

from agents import pretrained
from agents.runs import load_run
from agents.watch import record_episodes, render_episodes
from metro_pomdp import REGISTERED, render
from training.cli import HelpFormatter


def load_agent(parser: argparse.ArgumentParser, agent: str):
    """``(model, train env id, test env id)`` of a shipped agent's name or a run folder."""
    if agent in pretrained.names():
        card = pretrained.card(agent)
        return pretrained.load(agent), card["env_id"], card["test_env_id"]
    run = pathlib.Path(agent)
    if not (run / "model.zip").is_file() or not (run / "config.json").is_file():
        parser.error(f"AGENT {agent!r} is neither a shipped agent ({pretrained.names()}) nor a "
                     f"train_agent.py run folder with model.zip and config.json")
    try:
        config, model = load_run(run, device="cpu")
    except (OSError, ValueError) as err:
        parser.error(str(err))
    return model, config.env_id, config.test_env_id


def main(argv: list[str] | None = None) -> pathlib.Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("agent", metavar="AGENT",
                        help="a shipped agent's name or a train_agent.py run folder")
    parser.add_argument("--split", choices=("train", "test"), default="test",
                        help="the agent's training graphs or the held-out test graphs")
    parser.add_argument("--graphs", type=int, nargs="+", default=[0],
                        help="graph indices of the split (0-599)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per graph")
    parser.add_argument("--greedy", action="store_true",
                        help="the most likely action instead of a sampled one")
    parser.add_argument("--seed", type=int, default=0, help="env and action-sampling seed")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second")
    parser.add_argument("--dpi", type=int, default=80, help="resolution of the frames")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="a .gif or .mp4 file (default: runs/watch/<agent>-<split>.gif)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.fps <= 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    name = pathlib.Path(args.agent).name
    out = args.out or pathlib.Path("runs/watch") / f"{name}-{args.split}.gif"
    if out.suffix.lower() not in (".gif", ".mp4"):
        parser.error(f"--out must end in .gif or .mp4, got {out}")
    if out.suffix.lower() == ".mp4":
        from matplotlib import animation

        if not animation.writers.is_available("ffmpeg"):
            parser.error(f"--out {out}: writing MP4 needs ffmpeg on the PATH; give a .gif")
    model, train_id, test_id = load_agent(parser, args.agent)
    env_id = test_id if args.split == "test" else train_id
    if env_id not in REGISTERED:
        parser.error(f"the agent was trained on {train_id}; watching needs a MetroPOMDP env")
    n_graphs = REGISTERED[env_id].get("n_graphs", 600)
    bad = [g for g in args.graphs if not 0 <= g < n_graphs]
    if bad:
        parser.error(f"--graphs must lie in [0, {n_graphs}), got {bad}")
    start = time.perf_counter()
    episodes = record_episodes(model, env_id, args.graphs, args.episodes, args.greedy,
                               args.seed)
    for k, episode in enumerate(episodes):
        print(f"episode {k + 1}: {env_id} graph {episode.graph_index}: reward "
              f"{episode.total:.2f}, {episode.arrivals} arrivals, {len(episode.frames)} frames")
    images = render_episodes(episodes, dpi=args.dpi)
    render.save_animation(images, out, fps=args.fps)
    print(f"wrote {out}: {len(images)} frames, {len(images) / args.fps:.1f} s long at "
          f"{args.fps:g} frames/s (made in {time.perf_counter() - start:.1f} s)")
    return out


if __name__ == "__main__":
    main()
