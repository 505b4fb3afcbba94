"""DDP under torchrun (gloo on CPU): two processes on half the batch each train exactly the
model that one process trains on the whole batch."""

import pytest

from lm.train import train
from training.atomic import torch_load_checkpoint

SETUP = """
import torch
from lm.model import LanguageModel, LMConfig
from lm.train import TrainConfig

def setup():
    torch.manual_seed(0)
    data = torch.randint(0, 16, (400,))
    model = LanguageModel(LMConfig(16, embedding_size=8, hidden_size=12, n_layers=2, d_fwm=4,
                                   memory="fwm", dropout=0, dropouth=0, dropouti=0,
                                   dropoute=0, wdrop=0)).double()
    config = TrainConfig(batch_size=4, bptt=10, lr=3e-3, epochs=2, asgd_epoch=1,
                         asgd_lr=0.5, eval_batch_size=2)
    return model, data, config
"""


def test_two_processes_equal_one(tmp_path, train_two_processes):
    setup = train_two_processes(SETUP, "lm.train")
    last = torch_load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(last["state"]) == 2 and last["optimizer_kind"] == "asgd"
    assert last["state"][0][0][0].shape == (2, 12)  # each process carried half the batch
    # a two-process checkpoint refuses a one-process resume
    model, data, config = setup()
    with pytest.raises(ValueError, match="written by 2 processes"):
        train(model, data, data, config, tmp_path / "ddp", progress=False)


@pytest.mark.slow  # a torchrun launch, ~8 s
def test_non_finite_loss_on_one_process_stops_every_process(nan_on_one_process):
    outcomes = nan_on_one_process(SETUP, "lm.train")
    assert all(o.startswith("FloatingPointError: non-finite loss at batch 0") for o in outcomes), \
        outcomes
