"""Training machinery shared by the benchmarks: the supervised loop of catbAbI and language
modelling (:mod:`training.loop`), torch.distributed helpers, atomic checkpoints and Ctrl-C
between steps, run logs, data checksums, AWD-LSTM's regularisers, glibc's allocator setting and
the scripts' help formatter. It imports nothing of ``agents``, ``qa`` or ``lm`` except the FWM
state type that checkpoints may hold."""
