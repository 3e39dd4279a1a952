"""Datasets for the workbook: the bundled SMS and YouTube spam collections, your own CSV,
and (online only) a Hugging Face dataset.

Every loader returns a :class:`pandas.DataFrame` with two columns:

- ``text``  (str): the message,
- ``label`` (int): 1 = spam (the positive class), 0 = ham.

The two bundled datasets are CC BY 4.0; their attribution is in
``course_lib/datasets/README.md`` (see :func:`attribution`).
"""

from __future__ import annotations

import hashlib
import io
import html
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
from sklearn.model_selection import train_test_split

from . import config
from .config import OfflineError, hub_reachable

LABELS = {0: "ham", 1: "spam"}

SMS_FILE = "sms_spam/SMSSpamCollection"
SMS_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"

YOUTUBE_FILES = {
    "youtube_spam/Youtube01-Psy.csv": "0adb9644eb07edac96cdbce6f685dfa66e04cf5223d163a8540b30aaf03351b2",
    "youtube_spam/Youtube02-KatyPerry.csv": "8500d8f9469fed4715f46c636deab5d3d29cde6273f1500fd55b2b6d9535c1a5",
    "youtube_spam/Youtube03-LMFAO.csv": "c7dd2693b275c10a9df052d8230830070c44d93cd817ede1c0be0cffa44569f9",
    "youtube_spam/Youtube04-Eminem.csv": "1e5b432d42091fd9920345a8a79fba5153180d3e4aa59fdb113a989f488dee0c",
    "youtube_spam/Youtube05-Shakira.csv": "37833f21a024204a960876e96a9044ccbda1b603ecb90b0ec24c7a38c53bb532",
}


class DataError(ValueError):
    """Raised for data the workbook cannot use; the message says what to change."""


def _dataset_path(relative: str) -> Path:
    return Path(str(resources.files("course_lib") / "datasets" / relative))


def _checked_bytes(relative: str, sha256: str) -> bytes:
    path = _dataset_path(relative)
    if not path.is_file():
        raise DataError(
            f"Bundled data file {relative!r} is missing from the course_lib package. "
            "Reinstall the workbook (`pip install -e .`) to restore it."
        )
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DataError(
            f"Bundled data file {relative!r} is corrupted or was edited "
            f"(sha256 {digest[:12]}..., expected {sha256[:12]}...). "
            "Restore it with `git checkout -- course_lib/datasets` or reinstall the workbook."
        )
    return raw


def attribution() -> str:
    """The licence and citation text of the bundled datasets (Markdown)."""
    return _dataset_path("README.md").read_text(encoding="utf-8")


def validate(df: pd.DataFrame, name: str = "data") -> pd.DataFrame:
    """Check a ``text``/``label`` frame and return it with clean dtypes.

    Raises :class:`DataError` for missing columns, non-string or empty texts,
    labels other than 0/1, or fewer than two classes.
    """
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; found {list(df.columns)}.")
    if len(df) == 0:
        raise DataError(f"{name}: no rows.")
    not_str = [i for i, t in zip(df.index, df["text"]) if not isinstance(t, str)]
    if not_str:
        raise DataError(
            f"{name}: {len(not_str)} text(s) are not strings (first at row {not_str[0]}: "
            f"{df.loc[not_str[0], 'text']!r}). Drop or fill them before loading."
        )
    empty = [i for i, t in zip(df.index, df["text"]) if not t.strip()]
    if empty:
        raise DataError(
            f"{name}: {len(empty)} text(s) are empty (first at row {empty[0]}). "
            "Drop empty messages before training or evaluating."
        )
    try:
        labels = pd.to_numeric(df["label"], errors="raise").astype(int)
    except (ValueError, TypeError) as exc:
        values = sorted(map(str, set(df["label"])))[:5]
        raise DataError(
            f"{name}: labels must be 0 (ham) or 1 (spam); found values like {values}. "
            "Pass label_map={'ham': 0, 'spam': 1} (with your own label names) to load_csv."
        ) from exc
    bad = sorted(set(labels) - {0, 1})
    if bad:
        raise DataError(
            f"{name}: labels must be 0 (ham) or 1 (spam); found {bad}. "
            "Map your classes to 0/1 first (load_csv takes a label_map)."
        )
    if labels.nunique() < 2:
        raise DataError(
            f"{name}: only one class ({LABELS[int(labels.iloc[0])]}) is present; "
            "a classifier needs examples of both ham (0) and spam (1)."
        )
    return pd.DataFrame({"text": df["text"].astype(str).values, "label": labels.values})


def load_sms_spam() -> pd.DataFrame:
    """The SMS Spam Collection v.1: 5,574 messages, 747 spam (13.4%). Checksum verified."""
    raw = _checked_bytes(SMS_FILE, SMS_SHA256).decode("utf-8")
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        label, sep, text = line.partition("\t")
        if not sep or label not in {"ham", "spam"}:
            raise DataError(f"{SMS_FILE} line {number}: expected 'ham|spam<TAB>text'.")
        rows.append((text, 1 if label == "spam" else 0))
    return validate(pd.DataFrame(rows, columns=["text", "label"]), "SMS Spam Collection")


def load_youtube_spam() -> pd.DataFrame:
    """The YouTube Spam Collection (all five videos): 1,956 comments, 1,005 spam.

    HTML entities in the comments (``&amp;``, ``&#39;``) are decoded.
    """
    frames = []
    for relative, sha in YOUTUBE_FILES.items():
        raw = _checked_bytes(relative, sha)
        part = pd.read_csv(io.BytesIO(raw), encoding="utf-8")
        frames.append(pd.DataFrame({"text": part["CONTENT"].map(html.unescape), "label": part["label"]}))
    return validate(pd.concat(frames, ignore_index=True), "YouTube Spam Collection")


def load_csv(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[object, int] | None = None,
    **read_csv_kwargs,
) -> pd.DataFrame:
    """Load your own labelled texts from a CSV file.

    ``label_map`` turns your label values into 0/1, e.g. ``{"ham": 0, "spam": 1}``.
    Extra keyword arguments go to :func:`pandas.read_csv` (``sep="\\t"``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}. Check the path (relative paths start at the notebook's folder).")
    df = pd.read_csv(path, **read_csv_kwargs)
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataError(
            f"{path.name}: column(s) {missing} not found; the file has {list(df.columns)}. "
            "Pass text_column=... and label_column=... with the right names."
        )
    labels = df[label_column]
    if label_map is not None:
        unknown = sorted(map(str, set(labels) - set(label_map)))
        if unknown:
            raise DataError(f"{path.name}: label value(s) {unknown[:5]} are not in label_map {dict(label_map)}.")
        labels = labels.map(label_map)
    return validate(pd.DataFrame({"text": df[text_column], "label": labels}), path.name)


def load_hf_dataset(
    name: str,
    split: str = "train",
    text_column: str = "text",
    label_column: str = "label",
    **kwargs,
) -> pd.DataFrame:
    """Load a dataset from the Hugging Face Hub (needs the ``datasets`` package and internet).

    Example (online): ``load_hf_dataset("ucirvine/sms_spam", text_column="sms")``.
    Offline, this raises a clear error instead of hanging; use the bundled loaders.
    """
    try:
        import datasets  # noqa: F401
    except ImportError as exc:
        raise DataError(
            "load_hf_dataset needs the `datasets` package: `pip install datasets`. "
            "Offline, use load_sms_spam(), load_youtube_spam() or load_csv()."
        ) from exc
    if not hub_reachable():
        raise OfflineError(
            f"Cannot download dataset {name!r}: the Hugging Face Hub is not reachable (offline?). "
            "Use the bundled load_sms_spam() / load_youtube_spam(), or load_csv() on a local file."
        )
    ds = datasets.load_dataset(name, split=split, **kwargs)
    df = ds.to_pandas()
    if text_column not in df.columns or label_column not in df.columns:
        raise DataError(f"{name}: columns {list(df.columns)}; pass text_column=... and label_column=...")
    return validate(pd.DataFrame({"text": df[text_column], "label": df[label_column]}), name)


@dataclass
class Splits:
    """Train / validation / test frames (each with ``text`` and ``label``)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict:
        return {k: len(getattr(self, k)) for k in ("train", "val", "test")}


def split(df: pd.DataFrame, val_size: float = 0.1, test_size: float = 0.2, seed: int = 0) -> Splits:
    """Stratified, seeded train / validation / test split (fractions of the whole frame).

    The same ``df`` and ``seed`` always give the same split, so every chapter
    evaluates on the same test messages.
    """
    df = validate(df)
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise DataError(f"val_size and test_size must be in (0, 1) and sum below 1; got {val_size}, {test_size}.")
    rest, test = train_test_split(df, test_size=test_size, stratify=df["label"], random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_size / (1 - test_size), stratify=rest["label"], random_state=seed
    )
    return Splits(*(part.reset_index(drop=True) for part in (train, val, test)))


def sample(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """A stratified random subset of ``n`` rows (the whole frame if it has ``n`` or fewer)."""
    if n >= len(df):
        return df.reset_index(drop=True)
    part, _ = train_test_split(df, train_size=n, stratify=df["label"], random_state=seed)
    return part.reset_index(drop=True)


def for_mode(df: pd.DataFrame, fast_n: int, seed: int = 0) -> pd.DataFrame:
    """``df`` in full mode; a stratified subset of ``fast_n`` rows in fast mode (COURSE_FAST=1)."""
    return sample(df, fast_n, seed) if config.fast_mode() else df.reset_index(drop=True)


def sms_splits(seed: int = 0) -> Splits:
    """The workbook's standard split of the SMS data (70% train / 10% val / 20% test)."""
    return split(load_sms_spam(), seed=seed)


def as_lists(df: pd.DataFrame) -> tuple[list[str], list[int]]:
    """``(texts, labels)`` as plain Python lists."""
    return df["text"].tolist(), df["label"].astype(int).tolist()


def check_texts(texts: Iterable[object], name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of non-empty strings, or raise a :class:`DataError` saying which is bad."""
    if isinstance(texts, str):
        raise DataError(f"{name}: expected a list of strings, got a single string; wrap it: [{texts[:30]!r}].")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataError(f"{name}[{i}] is {type(t).__name__}, not a string: {t!r}.")
        if not t.strip():
            raise DataError(f"{name}[{i}] is empty; remove empty messages before predicting.")
    return out
