"""The FWM's successors, the fast-weight rules: the linear transformer's sum rule, DeltaNet's
delta rule and Gated DeltaNet's gated delta rule (:mod:`memory.delta.layer`), each as a
plain-loop reference (:mod:`~memory.delta.naive`), a chunk-parallel training form
(:mod:`~memory.delta.chunk`) and a one-step acting form (:mod:`~memory.delta.step`)."""
