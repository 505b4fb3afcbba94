"""DDP under torchrun (gloo on CPU): two processes on half the rows each train exactly the
model that one process trains on all rows, although the rows hold different numbers of
answers (the loss is normalised by the global count)."""

import pytest

from training.atomic import torch_load_checkpoint

SETUP = """
import numpy as np
import torch
from qa.data import EncodedStories, Story, Vocabulary
from qa.models import FWMModel
from qa.train import TrainConfig

def setup():
    rng = np.random.default_rng(0)
    stories = []
    for i in range(40):
        n = int(rng.integers(1, 4))  # 1-3 questions: rows get different answer counts
        words, answer = [], []
        for _ in range(n):
            who, where = ["mary", "john"][rng.integers(2)], ["garden", "hall"][rng.integers(2)]
            words += [who, "went", "to", "the", where, ".", "where", "is", who, "?", where]
            answer += [False] * 10 + [True]
        stories.append(Story(1 + i % 3, tuple(words + ["<eos>"]), tuple(answer + [False])))
    vocab = Vocabulary.from_stories(stories)
    data = EncodedStories(stories, vocab)
    torch.manual_seed(0)
    model = FWMModel(len(vocab), 8, 8, 4).double()
    config = TrainConfig(batch_size=4, bptt=7, steps=12, eval_every=6, valid_batch_size=2,
                         lr=3e-3)
    return model, data, config
"""


def test_two_processes_equal_one(tmp_path, train_two_processes):
    train_two_processes(SETUP, "qa.train")
    last = torch_load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(last["state"]) == 2 and last["state"][0][0].shape == (2, 8)


@pytest.mark.slow  # a torchrun launch, ~10 s
def test_non_finite_loss_on_one_process_stops_every_process(nan_on_one_process):
    outcomes = nan_on_one_process(SETUP, "qa.train")
    assert all(o.startswith("FloatingPointError: non-finite loss at step") for o in outcomes), \
        outcomes
    assert outcomes[0] == outcomes[1]  # the same step on both
