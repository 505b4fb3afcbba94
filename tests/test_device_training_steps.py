"""The catbAbI and LM training steps on a device: the same loss and metrics as on the CPU
(where the CPU takes its host shortcuts), and no wait for the device but the finite-loss check.

The device is ``meta`` (tensors without data: ``.item()``, ``bool()``, a boolean-mask
selection, ``.cpu()`` of one raise, and so does mixing it with a CPU tensor); where CUDA is
present, also ``cuda`` under ``torch.cuda.set_sync_debug_mode("error")``."""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from lm.model import LanguageModel, LMConfig
from memory import core_names
from memory.functional import device_path
from qa.data import EncodedStories, Story, Vocabulary, eval_segments
from qa.models import CoreModel, FWMModel, LSTMModel
from qa.train import MetricSums, segment_loss

DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


def toy_data():
    stories = [Story(1, ("a", "?", "x", "<eos>"), (False, False, True, False)),
               Story(2, ("b", "b", "?", "y", "<eos>"), (False, False, False, True, False)),
               Story(3, ("a", "b", "?", "x", "<eos>"), (False, False, False, True, False))]
    vocab = Vocabulary.from_stories(stories)
    return vocab, EncodedStories(stories, vocab)


def catbabi_models(vocab_size: int) -> dict:
    models = {"fwm": lambda: FWMModel(vocab_size, 8, 8, 4),
              "lstm": lambda: LSTMModel(vocab_size, 8, 8)}
    for name in core_names():
        models[f"core-{name}"] = lambda name=name: CoreModel(vocab_size, name, 8, 8)
    return models


@pytest.mark.parametrize("mode", ["qa", "lm"])
@pytest.mark.parametrize("name", list(catbabi_models(2)))
def test_catbabi_s_device_path_scores_what_the_cpu_path_scores(name, mode):
    """The masked scores of the device path (forced on the CPU) give the loss and the metrics
    of the CPU path's selected answers."""
    vocab, data = toy_data()
    torch.manual_seed(0)
    model = catbabi_models(len(vocab))[name]().double().eval()  # (no dropout: two calls)
    batch = next(eval_segments(data, 2, 1000))
    sums = {}
    losses = {}
    for path in ("cpu", "device"):
        with device_path() if path == "device" else contextlib.nullcontext():
            loss, nll, correct, task, _ = segment_loss(model, batch, None, mode)
        losses[path] = float(loss.detach())
        sums[path] = MetricSums()
        sums[path].add(nll, correct, task)
    assert losses["device"] == pytest.approx(losses["cpu"], rel=1e-12)
    a, b = sums["device"].result(), sums["cpu"].result()
    assert a.answers == b.answers == 3
    assert a.loss == pytest.approx(b.loss, rel=1e-12) and a.accuracy == b.accuracy
    assert a.per_task.keys() == b.per_task.keys() == {1, 2, 3}


@pytest.mark.parametrize("name", list(catbabi_models(2)))
@pytest.mark.parametrize("device", DEVICES)
def test_a_catbabi_training_step_on_a_device_waits_for_nothing(device, name, no_device_sync):
    vocab, data = toy_data()
    model = catbabi_models(len(vocab))[name]().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sums = MetricSums()
    batch = next(eval_segments(data, 2, 1000))
    state = model.initial_state(2)
    with no_device_sync(device):
        loss, nll, correct, task, state = segment_loss(model, batch, state, "qa", device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sums.add(nll, correct, task)
    assert loss.device.type == device and all(s.device.type == device for s in state)
    assert all(p.device.type == device for p in model.parameters())


@pytest.mark.parametrize("memory", ["none", "fwm", "delta-net"])
@pytest.mark.parametrize("device", DEVICES)
def test_an_lm_training_step_on_a_device_waits_for_nothing(device, memory, no_device_sync):
    """The step of lm.train: forward with the dropouts, the AR/TAR terms, backward, clipping
    and the optimizer step; the loss kept as a tensor (the trainer reads its losses every few
    batches, not every step)."""
    from training.regularization import (
        activation_regularization,
        temporal_activation_regularization,
    )

    config = LMConfig(vocab_size=50, embedding_size=16, hidden_size=24, n_layers=2,
                      memory=memory, d_fwm=4, n_reads=2)
    model = LanguageModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = torch.zeros(7, 3, dtype=torch.long, device=device)
    targets = torch.zeros(7, 3, dtype=torch.long, device=device)
    with no_device_sync(device):
        out = model(inputs, model.initial_state(3, device))
        raw_loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten())
        loss = (raw_loss + activation_regularization(out.dropped, 2.0)
                + temporal_activation_regularization(out.raw, 1.0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        state = model.detach_state(out.state)
    assert raw_loss.device.type == device
    assert all(p.device.type == device for p in model.parameters())
    assert all(s.device.type == device for s in _flat(state))


def _flat(state):
    for s in state:
        if isinstance(s, torch.Tensor):
            yield s
        else:
            yield from _flat(s)
