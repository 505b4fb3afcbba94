#!/usr/bin/env python
"""Evaluate a trained agent (a train_agent.py run folder) on the train and the held-out test
graphs, with sampled and with greedy actions, several episodes per graph.

Training logs one sampled episode per graph at each evaluation; this gives the final checkpoint
a steadier number (mean and its standard error over episodes) and the greedy policy's too
(SB3's ``evaluate_policy`` default). Env i plays graph i; the envs and the action sampling are
seeded, so a second call gives the same numbers.

Example:
    python scripts/evaluate_agent.py runs/fwm32-s0 --episodes 10
"""

from __future__ import annotations

import argparse
import json
import pathlib

from agents.evaluation import MODES, evaluate_splits
from agents.runs import load_run
from training.cli import HelpFormatter, add_machine_options, apply_machine_options, check_eval_envs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("run_dir", type=pathlib.Path,
                        help="a train_agent.py run folder (model.zip and config.json)")
    parser.add_argument("--episodes", type=int, default=10,
                        help="episodes per graph (default: 10)")
    parser.add_argument("--eval-envs", type=int, default=600,
                        help="graphs per split: env i plays graph i (default: 600, all of them)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES),
                        help="sampled actions (as training's evaluations) and/or greedy ones "
                             "(default: both)")
    parser.add_argument("--seed", type=int, default=0,
                        help="env and action-sampling seed (default: 0)")
    add_machine_options(parser, device="cpu", keep_memory=False, threads=1, threads_help=(
        "torch CPU threads; the agents' small matrix products run fastest on one"))
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="results JSON (default: RUN_DIR/evaluation.json)")
    args = parser.parse_args(argv)
    apply_machine_options(parser, args)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        config, model = load_run(args.run_dir, device=args.device)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    check_eval_envs(parser, args.eval_envs, config.env_id, config.test_env_id)
    results = {"run_dir": str(args.run_dir), "updates": model._n_updates,
               "timesteps": model.num_timesteps, "episodes_per_graph": args.episodes,
               "graphs": args.eval_envs, "seed": args.seed}
    print(f"{args.run_dir}: {model._n_updates} updates, {model.num_timesteps:,} env steps; "
          f"{args.episodes} episode(s) on each of {args.eval_envs} graphs per split")
    results.update(evaluate_splits(
        model, {"train": config.env_id, "test": config.test_env_id}, args.episodes,
        args.eval_envs, tuple(args.modes), args.seed, print_table=True))
    out = args.out or args.run_dir / "evaluation.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
