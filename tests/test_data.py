import hashlib

import pandas as pd
import pytest

from course_lib import data
from course_lib.data import DataError


def test_sms_counts_and_columns(sms):
    assert list(sms.columns) == ["text", "label"]
    assert len(sms) == 5574
    assert int(sms["label"].sum()) == 747
    assert sms["text"].map(type).eq(str).all()


def test_sms_checksum_matches_the_bundled_file():
    raw = data._dataset_path(data.SMS_FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == data.SMS_SHA256


def test_corrupted_file_is_detected(monkeypatch):
    monkeypatch.setattr(data, "SMS_SHA256", "0" * 64)
    with pytest.raises(DataError, match="corrupted"):
        data.load_sms_spam()


def test_youtube_counts():
    yt = data.load_youtube_spam()
    assert len(yt) == 1956 and int(yt["label"].sum()) == 1005
    assert not yt["text"].str.contains("&#39;").any()  # HTML entities decoded


def test_attribution_names_licence_and_citations():
    text = data.attribution()
    assert "CC BY 4.0" in text and "Almeida" in text and "Alberto" in text


def test_split_is_stratified_seeded_and_disjoint(sms):
    s1, s2 = data.split(sms, seed=0), data.split(sms, seed=0)
    assert s1.sizes() == {"train": 3901, "val": 558, "test": 1115}
    assert s1.test["text"].tolist() == s2.test["text"].tolist()
    for part in (s1.train, s1.val, s1.test):
        assert abs(part["label"].mean() - 747 / 5574) < 0.01
    assert sum(s1.sizes().values()) == len(sms)
    other = data.split(sms, seed=1)
    assert other.test["text"].tolist() != s1.test["text"].tolist()


def test_sample_and_for_mode(sms, monkeypatch):
    small = data.sample(sms, 200, seed=0)
    assert len(small) == 200 and 0 < small["label"].sum() < 200
    monkeypatch.setenv("COURSE_FAST", "1")
    assert len(data.for_mode(sms, 300)) == 300
    monkeypatch.setenv("COURSE_FAST", "0")
    assert len(data.for_mode(sms, 300)) == len(sms)


def test_load_csv_with_label_map(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"msg": ["win a prize now", "see you at lunch"], "kind": ["spam", "ham"]}).to_csv(path, index=False)
    df = data.load_csv(path, text_column="msg", label_column="kind", label_map={"ham": 0, "spam": 1})
    assert df["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"text": ["a", "b"]}), "missing column"),
        (pd.DataFrame({"text": ["hello", ""], "label": [0, 1]}), "empty"),
        (pd.DataFrame({"text": ["hello", None], "label": [0, 1]}), "not strings"),
        (pd.DataFrame({"text": ["hello", "bye"], "label": [0, 0]}), "only one class"),
        (pd.DataFrame({"text": ["hello", "bye"], "label": [0, 3]}), "none skipped.*0 = ham, 1 = spam"),
        (pd.DataFrame({"text": ["hello", "bye"], "label": ["ham", "spam"]}), "label_map"),
    ],
)
def test_validate_rejects_bad_frames(frame, message):
    with pytest.raises(DataError, match=message):
        data.validate(frame)


def test_load_csv_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.load_csv(tmp_path / "nope.csv")
    path = tmp_path / "x.csv"
    pd.DataFrame({"body": ["x", "y"], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="text_column"):
        data.load_csv(path)
    with pytest.raises(DataError, match="not in label_map"):
        data.load_csv(path, text_column="body", label_map={"a": 0})


def test_check_texts():
    assert data.check_texts(["a", "b"]) == ["a", "b"]
    with pytest.raises(DataError, match="single string"):
        data.check_texts("just one")
    with pytest.raises(DataError, match=r"texts\[1\] is empty"):
        data.check_texts(["ok", "  "])
    with pytest.raises(DataError, match="not a string"):
        data.check_texts(["ok", 3])


def test_hf_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception, match="(offline|datasets)"):
        data.load_hf_dataset("ucirvine/sms_spam")
