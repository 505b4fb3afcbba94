"""catbAbI metrics: answer-only accuracy and perplexity, per task, identical across paths."""

import math

import pytest
import torch

from qa.data import EncodedStories, Story, Vocabulary, eval_segments
from qa.models import FWMModel
from qa.train import MetricSums, evaluate, segment_loss


def toy_data():
    stories = [Story(1, ("a", "?", "x", "<eos>"), (False, False, True, False)),
               Story(2, ("b", "b", "?", "y", "<eos>"), (False, False, False, True, False)),
               Story(2, ("a", "?", "y", "<eos>"), (False, False, True, False))]
    vocab = Vocabulary.from_stories(stories)
    return stories, vocab, EncodedStories(stories, vocab)


def test_metrics_only_at_answers_and_perplexity_is_exp_mean_loss():
    torch.manual_seed(0)
    _, vocab, data = toy_data()
    model = FWMModel(len(vocab), 8, 8, 4)
    m = evaluate(model, data, batch_size=1, bptt=3)
    assert m.answers == 3 and set(m.per_task) == {1, 2}
    assert m.per_task[2]["answers"] == 2
    assert m.perplexity == pytest.approx(math.exp(m.loss))
    # the same numbers from one long segment (the training-path function)
    batch = next(eval_segments(data, 1, 1000))
    loss, nll, correct, task, _ = segment_loss(model, batch, model.initial_state(1), "qa")
    assert loss.item() == pytest.approx(m.loss, rel=1e-5)
    assert float(correct.float().mean()) == pytest.approx(m.accuracy)


def test_lm_mode_loss_covers_all_targets():
    torch.manual_seed(0)
    _, vocab, data = toy_data()
    model = FWMModel(len(vocab), 8, 8, 4)
    batch = next(eval_segments(data, 1, 1000))
    with torch.no_grad():
        lm, *_ = segment_loss(model, batch, None, "lm")
        qa, *_ = segment_loss(model, batch, None, "qa")
    assert float(lm) != pytest.approx(float(qa))
    with pytest.raises(ValueError, match="mode"):
        segment_loss(model, batch, None, "cloze")


def test_metric_sums_per_task():
    sums = MetricSums()
    sums.add(torch.tensor([0.0, math.log(4)]), torch.tensor([True, False]), torch.tensor([3, 3]))
    sums.add(torch.tensor([math.log(2)]), torch.tensor([True]), torch.tensor([5]))
    m = sums.result()
    assert m.accuracy == pytest.approx(2 / 3)
    assert m.per_task[3]["accuracy"] == 0.5
    assert m.per_task[3]["perplexity"] == pytest.approx(2.0)  # exp(mean(0, log 4))
    assert m.per_task[5]["perplexity"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no answers"):
        MetricSums().result()
