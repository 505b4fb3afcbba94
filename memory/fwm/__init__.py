"""The Fast Weight Memory (Schlag, Munkhdalai & Schmidhuber, ICLR 2021, section 3), split as
kernel libraries split an op:

* :mod:`memory.fwm.common`: what both forms share (keys of two factors, their dots, the clip);
* :mod:`memory.fwm.chunk`: :func:`fwm_scan`, the chunk-parallel training form over a sequence;
* :mod:`memory.fwm.step`: :func:`fwm_step`, one step on a low-rank memory, for acting;
* :mod:`memory.fwm.naive`: :func:`fwm_scan_reference`, the plain-loop reference the fast forms
  are tested against;
* :mod:`memory.fwm.cell`: :class:`FWMCell`, LSTM + FWM as an ``nn.Module`` with a config
  dataclass, a whole-sequence and a per-step interface.

Imports torch only.
"""

from memory.fwm.cell import (
    SETTINGS,
    FWMCell,
    FWMConfig,
    FWMState,
    FWMStepState,
    settings_options,
)
from memory.fwm.chunk import fwm_scan
from memory.fwm.common import key_size
from memory.fwm.naive import fwm_scan_reference, make_key
from memory.fwm.step import LowRankMemory, fold, fwm_step, low_rank_memory

__all__ = ["FWMCell", "FWMConfig", "FWMState", "FWMStepState", "LowRankMemory", "fold",
           "fwm_scan", "fwm_scan_reference", "fwm_step", "key_size", "low_rank_memory",
           "make_key", "SETTINGS", "settings_options"]
