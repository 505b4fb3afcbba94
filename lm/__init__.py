"""Word-level language modelling (paper section 4.3, appendix H): PTB and WikiText-2 with
AWD-LSTM and the AWD-FWM, reusing the FWM core of :mod:`memory.fwm`."""
