"""catbAbI: the concatenated-bAbI question-answering benchmark (paper section 4.1, appendix D).

* :mod:`qa.data`: preprocessing of the bAbI v1.2 files into stories with answers in line, the
  deterministic vocabulary, the dataset statistics (table 3) and the training / evaluation
  streams.
* :mod:`qa.models`: :class:`~qa.models.FWMModel` (embedding, LSTM + FWM, decoder).
* :mod:`qa.train`: answer-position metrics (overall and per task) and evaluation.
"""
