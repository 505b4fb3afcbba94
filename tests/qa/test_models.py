"""catbAbI models: shapes, padding leaves the memory untouched, state carry equals one call."""

import pytest
import torch

from qa.models import FWMModel


def small(**kw):
    torch.manual_seed(0)
    return FWMModel(vocab_size=11, embedding_size=8, hidden_size=8, d_fwm=4, **kw).double()


def test_logits_shape_and_state_carry():
    model = small()
    x = torch.randint(1, 11, (12, 3))
    logits, state = model(x)
    assert logits.shape == (12, 3, 11)
    first, s = model(x[:5])
    second, s = model(x[5:], s)
    torch.testing.assert_close(torch.cat([first, second]), logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s.F, state.F, rtol=1e-12, atol=1e-12)


def test_padding_does_not_write():
    model = small()
    x = torch.randint(1, 11, (6, 2))
    _, state = model(x)
    # a memory at the clip boundary whose norm rounding puts a hair above 1
    fw = state.F / state.F.flatten(1).norm(dim=1)[:, None, None] * (1 + 1e-15)
    state = state._replace(F=fw)
    _, after_padding = model(torch.zeros(4, 2, dtype=torch.long), state)  # 4 padding steps
    torch.testing.assert_close(after_padding.F, state.F, rtol=0, atol=0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="vocab_size"):
        FWMModel(vocab_size=1)
    with pytest.raises(ValueError, match="inputs must be int64"):
        small()(torch.zeros(3, 2))
