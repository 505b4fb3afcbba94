"""catbAbI pictures from training runs of ``scripts/train_catbabi.py``.

Examples::

    # figure 2: validation (and training) accuracy over steps, several runs
    python scripts/plot_catbabi.py curves runs/catbabi-fwm runs/catbabi-lstm --out curves.png
    # figures 17-18: per-task test accuracy (from each run's test.json)
    python scripts/plot_catbabi.py tasks runs/catbabi-fwm runs/catbabi-lstm --out tasks.png
    # figure 3: read queries at a question against the write keys of the story before it
    python scripts/plot_catbabi.py keys runs/catbabi-fwm --task 2 --story 0 --question 1

Runs are labelled by their folder name. ``keys`` rebuilds the FWM from the run's config.json and
best.pt and reads the chosen validation story alone from a zero state.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import torch

from qa.data import TASKS, EncodedStories, Vocabulary, load_split
from qa.models import FWMModel
from qa.plots import plot_key_similarities, plot_learning_curves, plot_per_task
from training.atomic import torch_load_checkpoint
from training.cli import HelpFormatter, add_data_options


def run_file(run_dir: str, name: str) -> pathlib.Path:
    path = pathlib.Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is {run_dir} a train_catbabi.py run?)")
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    curves = sub.add_parser("curves", help="figure 2: accuracy over training steps")
    curves.add_argument("runs", nargs="+", help="train_catbabi.py run folders")
    curves.add_argument("--out", default="catbabi_curves.png", help="PNG to write")
    tasks = sub.add_parser("tasks", help="figures 17-18: per-task test accuracy")
    tasks.add_argument("runs", nargs="+", help="train_catbabi.py run folders (with test.json)")
    tasks.add_argument("--out", default="catbabi_tasks.png", help="PNG to write")
    keys = sub.add_parser("keys", help="figure 3: read queries vs write keys")
    keys.add_argument("run", help="a train_catbabi.py run folder of the FWM (best.pt)")
    keys.add_argument("--task", type=int, default=2, choices=TASKS,
                      help="bAbI task whose story is drawn")
    keys.add_argument("--story", type=int, default=0, help="index among the task's stories")
    keys.add_argument("--question", type=int, default=1, help="1 = the story's first question")
    keys.add_argument("--split", default="valid", choices=["train", "valid", "test"],
                      help="split the story comes from")
    add_data_options(keys, "the bAbI files")
    keys.add_argument("--out", default="catbabi_keys.png", help="PNG to write")
    args = p.parse_args(argv)
    try:
        if args.what == "curves":
            plot_learning_curves({os.path.basename(os.path.normpath(r)):
                                  run_file(r, "progress.csv") for r in args.runs}, args.out)
        elif args.what == "tasks":
            plot_per_task({os.path.basename(os.path.normpath(r)):
                           json.loads(run_file(r, "test.json").read_text())["test"]
                           for r in args.runs}, args.out)
        else:
            plot_keys(args)
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    print(f"wrote {args.out}")


def plot_keys(args) -> None:
    config = json.loads(run_file(args.run, "config.json").read_text())["args"]
    if config.get("model", "fwm") != "fwm":
        raise ValueError(f"{args.run} is a {config['model']} run; only the FWM has keys")
    stories = {s: load_split(s, args.data_dir, verify=not args.no_verify)
               for s in ("train", "valid", "test")}
    vocab = Vocabulary.from_stories(*stories.values())
    model = FWMModel(len(vocab), n_reads=config["n_reads"],
                     key_mode="concat" if config["concat_keys"] else "outer",
                     settings=config.get("fwm_settings", "paper"))
    best = torch_load_checkpoint(run_file(args.run, "best.pt"), map_location="cpu")
    model.load_state_dict(best["model"])
    model.eval()
    of_task = [s for s in stories[args.split] if s.task == args.task]
    if not 0 <= args.story < len(of_task):
        raise ValueError(f"--story must be in [0, {len(of_task) - 1}] for task {args.task}")
    story = of_task[args.story]
    answers = [i for i, a in enumerate(story.is_answer) if a]
    if not 1 <= args.question <= len(answers):
        raise ValueError(f"--question must be in [1, {len(answers)}] for this story")
    end = answers[args.question - 1]  # the answer is the target of the input "?" before it
    words = ["<eos>", *story.words[:end]]
    ids = torch.as_tensor(EncodedStories([story], vocab).ids[:end], dtype=torch.long)
    inputs = torch.cat([torch.tensor([vocab.stoi["<eos>"]]), ids])
    sims = model.key_similarities(inputs)
    logits, _ = model(inputs[:, None])
    guess = vocab.decode([int(logits[-1, 0].argmax())])[0]
    plot_key_similarities(words, sims.numpy(), args.out,
                          title=f"task {args.task}, {args.split} story {args.story}: answer "
                                f"'{story.words[end]}', model says '{guess}'")


if __name__ == "__main__":
    main()
