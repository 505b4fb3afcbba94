"""Corpus loading, checksums and AWD-LSTM batching."""

import os

import numpy as np
import pytest
import torch

from lm.data import (
    CORPORA,
    EOS,
    Dictionary,
    batchify,
    corpus_files,
    get_batch,
    load_corpus,
    read_words,
    sample_seq_len,
)

DATA = os.environ.get("FWM_DATA_DIR", "")




@pytest.mark.parametrize("name", ["ptb", "wt2"])
def test_standard_counts_on_the_real_files(name):
    if not DATA:  # FWM_DATA_DIR set without the corpus's folder fails in load_corpus
        pytest.skip("FWM_DATA_DIR is not set (.ci/run sets it)")
    corpus = load_corpus(name, DATA)
    spec = CORPORA[name]
    assert len(corpus.dictionary) == spec.vocab_size
    for split in ("train", "valid", "test"):
        assert corpus.split(split).numel() == spec.tokens[split]
    assert corpus.dictionary.idx2word[corpus.train[-1]] == EOS


def write_corpus(root, lines=("a b c", "b c a a", "c")):
    folder = root / "ptb"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        corpus_files("ptb", tmp_path)
    folder = write_corpus(tmp_path)
    with pytest.raises(ValueError, match=r"ptb\.train\.txt: sha256 .* published "
                                         + CORPORA["ptb"].sha256["train"]):
        corpus_files("ptb", tmp_path)
    corpus = load_corpus("ptb", tmp_path, verify=False)  # a hand-made corpus, unchecked
    assert corpus.train.tolist() == [0, 1, 2, 3, 1, 2, 0, 0, 3, 2, 3]
    (folder / "ptb.test.txt").write_text("a zebra\n")
    with pytest.raises(ValueError, match="ptb.test.txt: word 'zebra' is not in the 4-word"):
        load_corpus("ptb", tmp_path, verify=False)
    with pytest.raises(ValueError, match="corpus must be one of"):
        corpus_files("ptb-typo", tmp_path)


def test_read_words_adds_eos_per_line(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text(" the cat \n\n sat\n")
    assert read_words(path) == ["the", "cat", EOS, EOS, "sat", EOS]
    d = Dictionary(read_words(path))
    assert d.idx2word == ["the", "cat", EOS, "sat"]


def test_batchify_and_get_batch_shift_targets_by_one():
    data = torch.arange(23)
    src = batchify(data, 4)  # 5 rows, remainder of 3 dropped
    assert src.shape == (5, 4)
    assert src[:, 1].tolist() == [5, 6, 7, 8, 9]  # column b is the b-th contiguous slice
    x, y = get_batch(src, 1, 3)
    assert x.shape == y.shape == (3, 4)
    assert torch.equal(y, x + 1)
    x, y = get_batch(src, 3, 10)  # clipped at the end
    assert x.shape == (1, 4) and y[0].tolist() == [4, 9, 14, 19]
    with pytest.raises(ValueError, match="batch_size"):
        batchify(data, 0)
    with pytest.raises(ValueError, match="too few"):
        batchify(torch.arange(3), 4)


def test_variable_bptt_lengths():
    rng = np.random.default_rng(0)
    lengths = np.array([sample_seq_len(70, rng) for _ in range(5000)])
    assert lengths.min() >= 5 and lengths.max() <= 110
    short = (lengths < 52).mean()  # the bptt / 2 branch, 5% of draws
    assert 0.03 < short < 0.07
    assert abs(np.median(lengths) - 70) <= 2


def test_a_corrupt_wikitext2_file_is_named_with_its_published_checksum(tmp_path):
    folder = tmp_path / CORPORA["wt2"].folder
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / CORPORA["wt2"].files[split]).write_text(" = Valkyria = \n")
    with pytest.raises(ValueError, match=r"wiki\.train\.tokens: sha256 .* published "
                                         + CORPORA["wt2"].sha256["train"]):
        corpus_files("wt2", tmp_path)
    (folder / CORPORA["wt2"].files["valid"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"wt2 valid file not found: .*wiki\.valid"):
        corpus_files("wt2", tmp_path, verify=False)


def test_recurs_within_marks_tokens_seen_in_the_window_before():
    from lm.data import rare_repeat_stretch, recurs_within

    ids = [1, 2, 1, 3, 2, 4, 1]
    assert recurs_within(ids, 2).tolist() == [False, False, True, False, False, False, False]
    assert recurs_within(ids, 4).tolist() == [False, False, True, False, True, False, True]
    # the stretch whose rare words repeat: 7 recurs at positions 5 and 7; 0 is frequent
    counts = np.array([100, 1, 1, 1, 1, 1, 1, 1])
    assert rare_repeat_stretch([0, 0, 0, 0, 7, 0, 7, 0, 0, 0], counts, 3) == 4
