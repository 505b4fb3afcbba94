"""catbAbI: the concatenated-bAbI question-answering benchmark (paper section 4.1, appendix D).

* :mod:`qa.data`: preprocessing of the bAbI v1.2 files into stories with answers in line, the
  deterministic vocabulary and the dataset statistics (table 3).
"""
