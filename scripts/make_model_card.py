#!/usr/bin/env python
"""Ship a train_agent.py run as a pretrained agent: write its policy's weights into
agents/pretrained/ with its model card (how it was trained and its evaluate_agent.py numbers).

The card records the command and commit you give, the run's seed, wall time and updates, the
machine, and the evaluation: EPISODES episodes on each of the 600 train and 600 test graphs,
sampled and greedy actions, with standard errors, plus ``check``, one sampled episode per test
graph, which the test suite reproduces exactly.

Example:
    python scripts/make_model_card.py runs/fwm --name fwm-32-16 --commit d73940f \\
        --description "FWM-32-16, the CPU recipe, 60 minutes" \\
        --command "python scripts/train_agent.py --core fwm --minutes 60 ..."
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform

import torch

from agents import pretrained
from agents.evaluation import evaluate_splits
from agents.runs import RunConfig
from training.cli import HelpFormatter

#: the protocol of ``card["check"]``: one sampled episode per test graph, this seed
CHECK_SEED = 0


def cpu_name() -> str:
    """The CPU model and the logical cores of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("run_dir", type=pathlib.Path,
                        help="a finished train_agent.py run (model.zip, config.json, final.json)")
    parser.add_argument("--name", required=True, help="the shipped agent's name, e.g. fwm-32-16")
    parser.add_argument("--description", required=True, help="one line for the listing")
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--commit", required=True, help="the commit it was trained at")
    parser.add_argument("--notes", default="",
                        help="what else the card should say (the machine's load, how the "
                             "seed was chosen)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per graph")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pretrained.DIRECTORY,
                        help="where the weights and the card go")
    args = parser.parse_args(argv)
    for name in ("model.zip", "config.json", "final.json"):
        if not (args.run_dir / name).is_file():
            parser.error(f"{args.run_dir / name} not found: run_dir must be a finished "
                         f"train_agent.py run")
    torch.set_num_threads(args.threads)
    config = RunConfig.load(args.run_dir / "config.json")
    final = json.loads((args.run_dir / "final.json").read_text())
    trained = config.algorithm.load(args.run_dir / "model.zip", device="cpu")  # our own run
    card = {
        "name": args.name, "description": args.description,
        "core": config.core, "hidden": config.hidden, "d_fwm": config.d_fwm,
        "fwm_settings": (config.fwm_settings if config.core == "fwm"
                         else None),
        "net_arch": config.net_arch, "parameters": final["parameters"],
        "env_id": config.env_id, "test_env_id": config.test_env_id,
        "command": args.command, "commit": args.commit, "seed": config.seed,
        "preset": config.preset, "n_envs": config.n_envs,
        "random_graph": config.random_graph,
        "updates": trained._n_updates, "timesteps": trained.num_timesteps,
        "wall_minutes": round(final["learn_wall_s"] / 60, 1),
        "training_threads": final["threads"],
        "machine": cpu_name(), "torch": torch.__version__, "notes": args.notes,
        "final_training_evaluation": {"train": final["train_reward"],
                                      "test": final["test_reward"]},
    }
    pretrained.save(trained, args.name, card, args.out_dir)
    # the numbers are those of the shipped files, loaded as a user loads them
    model = pretrained.load(args.name, directory=args.out_dir)
    env_ids = {"train": config.env_id, "test": config.test_env_id}
    print(f"{args.name}: {model._n_updates} updates; evaluating ({args.episodes} episode(s) per "
          f"graph)")
    evaluation = evaluate_splits(model, env_ids, args.episodes, seed=0, print_table=True)
    check = evaluate_splits(model, {"test": config.test_env_id}, 1, modes=("sampled",),
                            seed=CHECK_SEED)["sampled/test"]
    card["evaluation"] = {"episodes_per_graph": args.episodes, "graphs": 600, "seed": 0,
                          **{k: {"mean": round(v["mean"], 2), "stderr": round(v["stderr"], 2)}
                             for k, v in evaluation.items()}}
    card["check"] = {"split": "test", "mode": "sampled", "episodes_per_graph": 1,
                     "seed": CHECK_SEED, "mean": check["mean"]}
    paths = pretrained.save(trained, args.name, card, args.out_dir)
    print(f"wrote {paths[0]} and {paths[1]}")
    return card


if __name__ == "__main__":
    main()
