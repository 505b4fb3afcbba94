"""Recurrent memory cores, one interface for every benchmark of this project (reinforcement
learning, catbAbI, language modelling): the Fast Weight Memory of the paper beside an LSTM, a
GRU and the FWM's successors.

=======================  ===========================================================  =======
name                     core                                                         module
=======================  ===========================================================  =======
``fwm``                  LSTM + Fast Weight Memory (Schlag et al., ICLR 2021)          fwm
``lstm``, ``gru``        one ``torch.nn`` recurrent layer                             rnn
``linear-transformer``   sum rule, DPFP keys (Schlag, Irie & Schmidhuber, ICML 2021)  delta
``delta-net``            delta rule, DPFP keys (the same paper)                       delta
``gated-delta-net``      gated delta rule (Yang, Kautz & Hatamizadeh, ICLR 2025)      delta
=======================  ===========================================================  =======

``make_core(name, input_size, hidden_size, **options)`` builds one (or a user's class with the
:class:`MemoryCore` interface); a new core is one module and one :func:`register_core` line
below. The package imports torch only.
"""

from memory.base import (
    INTERFACE,
    CoreSpec,
    MemoryCore,
    core_names,
    core_spec,
    make_core,
    nearest_width,
    parameter_count,
    register_core,
    size_for_budget,
    state_types,
)
from memory.delta.layer import FastWeightConfig, FastWeightCore, FastWeightState
from memory.fwm import FWMCell, FWMConfig, FWMState, FWMStepState, settings_options
from memory.rnn import GRUCore, GRUState, LSTMCore, LSTMState

__all__ = ["INTERFACE", "CoreSpec", "FWMCell", "FWMConfig", "FWMState", "FWMStepState",
           "FastWeightConfig", "FastWeightCore", "FastWeightState", "GRUCore", "GRUState",
           "LSTMCore", "LSTMState", "MemoryCore", "core_names", "core_spec", "make_core",
           "nearest_width", "parameter_count", "register_core", "size_for_budget", "state_types"]


def build_fwm(input_size: int, hidden_size: int, d_fwm: int = 32, settings: str = "paper",
              **options) -> FWMCell:
    """The FWM (:class:`FWMCell`): an LSTM of ``hidden_size`` controlling a memory of
    ``d_fwm``, output ``h + W_o n``; ``settings`` names the equations
    (:func:`memory.fwm.settings_options`), ``options`` further :class:`FWMConfig` fields."""
    fields = {"residual": True, **settings_options(settings, d_fwm), **options}
    return FWMCell(FWMConfig(input_size=input_size, hidden_size=hidden_size, d_fwm=d_fwm,
                             **fields))


def _no_options(cls):
    def build(input_size: int, hidden_size: int, **options):
        if options:
            raise TypeError(f"{cls.__name__} takes no options, got {sorted(options)}")
        return cls(input_size, hidden_size)
    build.__name__ = cls.__name__
    return build


def _fast_weights(rule: str):
    def build(input_size: int, hidden_size: int, **options) -> FastWeightCore:
        return FastWeightCore(FastWeightConfig(input_size, hidden_size, rule=rule, **options))
    build.__name__ = f"fast_weights_{rule}"
    return build


register_core(CoreSpec("fwm", build_fwm, (FWMState, FWMStepState), FWMConfig,
                       "LSTM + Fast Weight Memory (the paper)"))
register_core(CoreSpec("lstm", _no_options(LSTMCore), (LSTMState,), None, "an LSTM layer"))
register_core(CoreSpec("gru", _no_options(GRUCore), (GRUState,), None, "a GRU layer"))
register_core(CoreSpec("linear-transformer", _fast_weights("sum"), (FastWeightState,),
                       FastWeightConfig, "sum-rule fast weights (ICML 2021)"))
register_core(CoreSpec("delta-net", _fast_weights("delta"), (FastWeightState,),
                       FastWeightConfig, "delta-rule fast weights (ICML 2021)"))
register_core(CoreSpec("gated-delta-net", _fast_weights("gated-delta"), (FastWeightState,),
                       FastWeightConfig, "gated delta rule (ICLR 2025)"))
