"""catbAbI preprocessing against hand-made files and the real bAbI v1.2 files."""

import os

import pytest

from qa.data import (
    EOS,
    PAPER_TABLE_3,
    SPLITS,
    Vocabulary,
    babi_dir,
    load_split,
    parse_babi,
    statistics,
)

HAS_DATA = bool(os.environ.get("FWM_DATA_DIR")) and os.path.isdir(
    os.path.join(os.environ.get("FWM_DATA_DIR", ""), "babi-v1.2"))
needs_data = pytest.mark.skipif(not HAS_DATA, reason="FWM_DATA_DIR with babi-v1.2 not set "
                                                     "(.ci/run sets it)")

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
    answers = [w for w, a in zip(first.words, first.is_answer) if a]
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


def test_vocabulary_is_deterministic():
    a = Vocabulary(["b", "a", "c", EOS])
    b = Vocabulary(["c", "b", "a", "a"])
    assert a.itos == b.itos == ["<pad>", EOS, "a", "b", "c"]
    assert list(a.decode(a.encode(["c", "a"]))) == ["c", "a"]
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        a.encode(["zebra"])


@needs_data
def test_real_files_match_table_3_up_to_the_kept_last_stories():
    stories = {split: load_split(split) for split in SPLITS}
    stats = statistics(stories)
    # the authors' script drops the last story of each of the 20 files; we keep them
    for split in ("valid", "test"):
        assert stats[split]["stories"] == PAPER_TABLE_3[split]["stories"] + 20
        last_questions = 0
        for task in range(1, 21):
            task_stories = [s for s in stories[split] if s.task == task]
            last_questions += task_stories[-1].n_questions
        assert stats[split]["questions"] == PAPER_TABLE_3[split]["questions"] + last_questions
    n_qa3 = sum(s.task == 3 for s in stories["train"])
    assert n_qa3 in (185, 1800)  # PROVENANCE.md: the shared qa3_train.txt is partial
    assert stats["train"]["stories"] == PAPER_TABLE_3["train"]["stories"] + 20 - (1800 - n_qa3)
    vocab = Vocabulary.from_stories(*stories.values())
    assert len(vocab) == 180
    assert all(s.words[-1] == EOS and EOS not in s.words[:-1] for s in stories["valid"])
