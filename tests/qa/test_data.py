"""catbAbI preprocessing against hand-made files and the real bAbI v1.2 files."""

import os
import warnings

import numpy as np
import pytest

from qa.data import (
    BABI_SHA256,
    EOS,
    PAPER_TABLE_3,
    EncodedStories,
    Vocabulary,
    babi_dir,
    eval_segments,
    load_split,
    parse_babi,
    segments,
    statistics,
    train_stream,
)

# FWM_DATA_DIR set: the data tests run, and a missing or partial babi-v1.2 folder fails them
HAS_DATA = bool(os.environ.get("FWM_DATA_DIR"))
needs_data = pytest.mark.skipif(not HAS_DATA, reason="FWM_DATA_DIR is not set (.ci/run sets it)")

SAMPLE = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Which way is the kitchen from the garden?\tn,w\t2 4
1 Sandra journeyed to the office.
2 Is Sandra in the office? \tyes\t1
"""


def test_parse_hand_made_file(tmp_path):
    path = tmp_path / "qa7_train.txt"
    path.write_text(SAMPLE)
    first, second = parse_babi(path, task=7)
    assert first.words == ("mary", "moved", "to", "the", "bathroom", ".", "john", "went", "to",
                           "the", "hallway", ".", "where", "is", "mary", "?", "bathroom",
                           "daniel", "went", "back", "to", "the", "hallway", ".", "which", "way",
                           "is", "the", "kitchen", "from", "the", "garden", "?", "n,w", EOS)
    answers = [w for w, a in zip(first.words, first.is_answer, strict=True) if a]
    assert answers == ["bathroom", "n,w"] and first.task == 7 and first.n_questions == 2
    assert second.words[-3:] == ("?", "yes", EOS)  # the last story of the file is kept
    assert len(first.words) == len(first.is_answer)


def test_bad_input_is_named(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="qa1_train.txt"):
        parse_babi(tmp_path / "qa1_train.txt", 1)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 Where is Mary?\ttwo words\t1\n")
    with pytest.raises(ValueError, match="bad.txt:1: answer must be one token"):
        parse_babi(bad, 1)
    monkeypatch.delenv("FWM_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="FWM_DATA_DIR"):
        babi_dir()
    with pytest.raises(FileNotFoundError, match="en-valid-10k"):
        babi_dir(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_split("dev", tmp_path)


def test_files_are_checked_against_the_official_checksums(tmp_path):
    folder = tmp_path / "babi-v1.2" / "en-valid-10k"
    folder.mkdir(parents=True)
    (folder / "qa1_valid.txt").write_text(SAMPLE)
    with pytest.raises(ValueError, match="qa1_valid.txt: sha256 .* expected the official "
                                         + BABI_SHA256["qa1_valid"]):
        load_split("valid", tmp_path, tasks=(1,))
    assert len(load_split("valid", tmp_path, tasks=(1,), verify=False)) >= 1
    with pytest.raises(FileNotFoundError, match="qa2_valid.txt"):
        load_split("valid", tmp_path, tasks=(1, 2), verify=False)
    with pytest.raises(ValueError, match="tasks must be in 1..20"):
        load_split("valid", tmp_path, tasks=(21,))


def test_vocabulary_is_deterministic():
    a = Vocabulary(["b", "a", "c", EOS])
    b = Vocabulary(["c", "b", "a", "a"])
    assert a.itos == b.itos == ["<pad>", EOS, "a", "b", "c"]
    assert list(a.decode(a.encode(["c", "a"]))) == ["c", "a"]
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        a.encode(["zebra"])


@needs_data
def test_real_files_match_table_3_up_to_the_kept_last_stories():
    stories = {split: load_split(split) for split in ("valid", "test")}  # checksums verified
    try:
        stories["train"] = load_split("train")
    except ValueError as err:  # a partial copy fails its checksum, and the error says so
        assert "qa3_train.txt" in str(err) and "holds 185 of the 1,800 stories" in str(err)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stories["train"] = load_split("train", verify=False)  # used, with a warning
        partial = [str(w.message) for w in caught if "partial copy" in str(w.message)]
        assert len(partial) == 1 and "qa3_train.txt holds 185 of the 1,800" in partial[0]
    n_qa3 = sum(s.task == 3 for s in stories["train"])
    stats = statistics(stories)
    # the authors' script drops the last story of each of the 20 files; we keep them
    for split in ("valid", "test"):
        assert stats[split]["stories"] == PAPER_TABLE_3[split]["stories"] + 20
        last_questions = 0
        for task in range(1, 21):
            task_stories = [s for s in stories[split] if s.task == task]
            last_questions += task_stories[-1].n_questions
        assert stats[split]["questions"] == PAPER_TABLE_3[split]["questions"] + last_questions
    assert n_qa3 in (185, 1800)  # PROVENANCE.md: the shared qa3_train.txt is partial
    assert stats["train"]["stories"] == PAPER_TABLE_3["train"]["stories"] + 20 - (1800 - n_qa3)
    vocab = Vocabulary.from_stories(*stories.values())
    assert len(vocab) == 180
    assert all(s.words[-1] == EOS and EOS not in s.words[:-1] for s in stories["valid"])


def _toy(tmp_path):
    path = tmp_path / "qa1_train.txt"
    path.write_text(SAMPLE)
    stories = parse_babi(path, 1) * 3  # 6 stories
    vocab = Vocabulary.from_stories(stories)
    return stories, vocab, EncodedStories(stories, vocab)


@pytest.mark.parametrize("batch_size,bptt", [(1, 7), (2, 5), (4, 200)])
def test_segments_cover_every_token_once_with_shifted_targets(tmp_path, batch_size, bptt):
    stories, vocab, data = _toy(tmp_path)
    batches = list(segments(data, np.arange(len(data)), batch_size, bptt))
    inputs = np.concatenate([b.inputs for b in batches])
    targets = np.concatenate([b.targets for b in batches])
    valid = np.concatenate([b.valid for b in batches])
    answer = np.concatenate([b.answer for b in batches])
    assert all(len(b.inputs) <= bptt for b in batches)
    np.testing.assert_array_equal(inputs[1:], targets[:-1])  # targets are the next inputs
    assert (inputs[0] == vocab.stoi[EOS]).all()
    assert valid.sum() == sum(len(s.words) for s in stories)  # every word once as a target
    assert answer.sum() == sum(s.n_questions for s in stories)
    assert set(vocab.decode(targets[answer])) == {"bathroom", "n,w", "yes"}
    assert (targets[~valid] == 0).all() and not answer[~valid].any()
    per_row = [vocab.decode(targets[valid[:, b], b]) for b in range(batch_size)]
    assert sum(r.count(EOS) for r in per_row) == len(stories)


def test_train_stream_draws_a_new_permutation_each_epoch(tmp_path):
    _, _, data = _toy(tmp_path)
    stream = train_stream(data, batch_size=1, bptt=1000, seed=0)
    first = [next(stream) for _ in range(3)]
    assert [e for e, _ in first] == [0, 1, 2]
    orders = [tuple(b.targets[b.valid].tolist()) for _, b in first]
    assert sorted(orders[0]) == sorted(orders[1]) == sorted(orders[2])  # same stories
    assert len(set(orders)) > 1  # in a different order
    again = train_stream(data, batch_size=1, bptt=1000, seed=0)
    np.testing.assert_array_equal(next(again)[1].targets, first[0][1].targets)


def test_eval_order_is_fixed(tmp_path):
    _, _, data = _toy(tmp_path)
    a = [b.targets for b in eval_segments(data, 2, 5)]
    b = [b.targets for b in eval_segments(data, 2, 5)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@needs_data
@pytest.mark.filterwarnings("ignore:.*a partial copy")  # asserted above
def test_stats_script_prints_table(run_script):
    out = run_script("catbabi_stats.py", "--no-verify").stdout  # (a partial qa3 fails verify)
    assert "6,265" in out and "6,245" in out and "vocabulary: 180" in out


def test_stats_script_errors_are_one_line_and_name_the_fix(tmp_path, run_script, monkeypatch):
    monkeypatch.delenv("FWM_DATA_DIR", raising=False)
    out = run_script("catbabi_stats.py", expect=2)
    assert "Traceback" not in out.stderr
    assert "no data directory" in out.stderr and "scripts/download_data.py" in out.stderr
    folder = tmp_path / "babi-v1.2" / "en-valid-10k"
    folder.mkdir(parents=True)
    for task in range(1, 21):
        for split in ("train", "valid", "test"):
            (folder / f"qa{task}_{split}.txt").write_text(SAMPLE)
    out = run_script("catbabi_stats.py", "--data-dir", tmp_path, expect=2)
    assert "Traceback" not in out.stderr
    assert "qa1_train.txt: sha256" in out.stderr and BABI_SHA256["qa1_train"] in out.stderr
    assert "--no-verify" in out.stderr and "PROVENANCE" not in out.stderr
    out = run_script("catbabi_stats.py", "--data-dir", tmp_path, "--no-verify")
    assert "vocabulary:" in out.stdout
