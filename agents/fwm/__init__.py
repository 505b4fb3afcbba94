"""The Fast Weight Memory (Schlag, Munkhdalai & Schmidhuber, ICLR 2021, section 3).

* :mod:`agents.fwm.ops`: :func:`fwm_scan`, the fast batched write/read scan over a sequence,
  and :func:`fwm_step`, one step on a low-rank memory for acting (pure functions).
* :mod:`agents.fwm.naive`: :func:`fwm_scan_reference`, the plain-loop reference it is tested
  against.
* :mod:`agents.fwm.cell`: :class:`FWMCell`, LSTM + FWM as an ``nn.Module`` with a config
  dataclass, a whole-sequence and a per-step interface.

Imports torch only.
"""

from agents.fwm.naive import fwm_scan_reference, make_key
from agents.fwm.ops import LowRankMemory, fold, fwm_scan, fwm_step, key_size, low_rank_memory
from agents.fwm.cell import (SETTINGS, FWMCell, FWMConfig, FWMState, FWMStepState, lstm_step,
                             lstm_with_resets, settings_options)

__all__ = ["FWMCell", "FWMConfig", "FWMState", "FWMStepState", "LowRankMemory", "fold",
           "fwm_scan", "fwm_scan_reference", "fwm_step", "key_size", "low_rank_memory",
           "lstm_step", "lstm_with_resets", "make_key", "SETTINGS", "settings_options"]
