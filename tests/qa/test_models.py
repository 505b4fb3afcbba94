"""catbAbI models: shapes, padding leaves the memory untouched, state carry equals one call."""

import pytest
import torch

from qa.models import FWMModel, LSTMModel


def small(**kw):
    torch.manual_seed(0)
    return FWMModel(vocab_size=11, embedding_size=8, hidden_size=8, d_fwm=4, **kw).double()


def test_the_authors_settings_are_the_individual_options_and_nothing_else():
    """settings="authors" builds the model that the options it names build one by one (no
    hidden extra change), and differs from the paper's model."""
    authors = small(settings="authors")
    explicit = small(fwm_options={"beta_bias": 1.0, "update_scale": 1 / 4,
                                  "squash_first_read_key": False, "init": "authors"})
    paper = small()
    assert authors.state_dict().keys() == explicit.state_dict().keys()
    for (name, a), b in zip(authors.state_dict().items(), explicit.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert authors.decoder.bias is None and paper.decoder.bias is not None
    x = torch.randint(1, 11, (30, 2))
    logits, state = authors(x)
    logits_explicit, state_explicit = explicit(x)
    torch.testing.assert_close(logits, logits_explicit, rtol=0, atol=0)
    torch.testing.assert_close(state.F, state_explicit.F, rtol=0, atol=0)
    assert not torch.allclose(logits, paper(x)[0])
    with pytest.raises(ValueError, match="settings"):
        small(settings="authors-rl")


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


def test_lstm_baseline_state_carry_residual_and_dropout():
    torch.manual_seed(0)
    model = LSTMModel(11, embedding_size=6, hidden_size=8, n_layers=3).double()
    names = [n for n, _ in model.named_parameters()]
    assert sum(n.endswith("weight_hh_l0_raw") for n in names) == 3  # weight drop on all layers
    x = torch.randint(1, 11, (12, 3))
    assert not torch.allclose(model(x)[0], model(x)[0])  # dropouts active in training
    model.eval()
    logits, state = model(x)
    assert logits.shape == (12, 3, 11) and state.h.shape == (3, 3, 8)  # batch-first [B, L, H]
    first, s = model(x[:5])
    second, s = model(x[5:], s)
    torch.testing.assert_close(torch.cat([first, second]), logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s.c, state.c, rtol=1e-12, atol=1e-12)
    # residual: with the upper layers' outputs zeroed, the output is the first layer's alone
    with torch.no_grad():
        for layer in model.layers[1:]:
            for p in layer.parameters():
                p.zero_()
    base = LSTMModel(11, embedding_size=6, hidden_size=8, n_layers=1).double().eval()
    base.embedding, base.decoder = model.embedding, model.decoder
    base.layers[0].load_state_dict(model.layers[0].state_dict())
    # zero weights still give out = o * tanh(c) with o = sigmoid(0) = 1/2 and c = 0 -> 0
    torch.testing.assert_close(model(x)[0], base(x)[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="hidden_size"):
        LSTMModel(11, hidden_size=0)
