"""AWD regularisation: each piece drops what it should, only in training, and passes
gradients."""

import pytest
import torch
from torch import nn

from training.regularization import (
    LockedDropout,
    activation_regularization,
    embedded_dropout,
    temporal_activation_regularization,
    weight_drop_,
)


def test_weight_drop_drops_in_training_only_and_gradients_reach_the_raw_weights():
    torch.manual_seed(0)
    lstm = weight_drop_(nn.LSTM(3, 16, num_layers=2), 0.5)
    names = [n for n, _ in lstm.named_parameters()]
    assert "weight_hh_l0_raw" in names and "weight_hh_l0" not in names
    x = torch.randn(6, 2, 3)
    y1, _ = lstm(x)
    dropped = lstm.weight_hh_l0
    zero_frac = (dropped == 0).float().mean().item()
    assert 0.4 < zero_frac < 0.6
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], 2 * lstm.weight_hh_l0_raw[kept])
    y2, _ = lstm(x)
    assert not torch.allclose(y1, y2)  # a fresh mask per call
    y1.sum().backward()
    assert lstm.weight_hh_l0_raw.grad is not None
    assert (lstm.weight_hh_l0_raw.grad[~kept] == 0).all()  # dropped weights get no gradient
    assert lstm.weight_hh_l0_raw.grad[kept].abs().sum() > 0

    lstm.eval()  # no dropping: the same as a plain LSTM with the raw weights
    plain = nn.LSTM(3, 16, num_layers=2)
    with torch.no_grad():
        for name, p in plain.named_parameters():
            p.copy_(getattr(lstm, name + "_raw" if name.startswith("weight_hh") else name))
    torch.testing.assert_close(lstm(x)[0], plain(x)[0])
    with pytest.raises(ValueError, match="already"):
        weight_drop_(lstm, 0.5)
    with pytest.raises(ValueError, match="weight drop"):
        weight_drop_(nn.LSTM(3, 4), 1.0)


def test_weight_dropped_lstm_moves_dtype_and_round_trips_state_dict():
    torch.manual_seed(0)
    lstm = weight_drop_(nn.LSTM(3, 4), 0.3).double().eval()
    out, _ = lstm(torch.randn(5, 1, 3, dtype=torch.float64))
    assert out.dtype == torch.float64
    other = weight_drop_(nn.LSTM(3, 4), 0.3).double().eval()
    other.load_state_dict(lstm.state_dict())
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    torch.testing.assert_close(lstm(x)[0], other(x)[0])


def test_locked_dropout_uses_one_mask_per_sequence():
    torch.manual_seed(0)
    drop = LockedDropout()
    y = drop(torch.ones(50, 4, 32), 0.5)
    assert torch.equal(y, y[:1].expand_as(y))  # the same mask at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert not torch.equal(y[0, 0], y[0, 1])  # different masks for different sequences
    drop.eval()
    x = torch.randn(5, 2, 3)
    assert drop(x, 0.5) is x


def test_embedded_dropout_drops_whole_words():
    torch.manual_seed(0)
    emb = nn.Embedding(100, 8)
    words = torch.arange(100).repeat(3, 1)  # every word at three positions
    out = embedded_dropout(emb, words, 0.5)
    zero = (out == 0).all(-1)  # (3, 100)
    assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
    assert 30 < zero[0].sum() < 70
    torch.testing.assert_close(out[0][~zero[0]], 2 * emb.weight[~zero[0]])
    torch.testing.assert_close(embedded_dropout(emb, words, 0.5, training=False), emb(words))


def test_ar_and_tar():
    h = torch.tensor([[[1.0]], [[3.0]]])  # (T=2, B=1, d=1)
    assert activation_regularization(h, 2.0).item() == pytest.approx(2 * (1 + 9) / 2)
    assert temporal_activation_regularization(h, 1.0).item() == pytest.approx(4.0)
