"""Datasets for the workbook: the bundled SMS and YouTube spam collections, your own CSV,
and (online only) a Hugging Face dataset.

Every loader returns a :class:`pandas.DataFrame` with two columns:

- ``text``  (str): the message,
- ``label`` (int): the class id; for the spam datasets 1 = spam (the positive class), 0 = ham.
  Your own CSV may have any number of classes (ids 0..K-1, names in ``df.attrs["class_names"]``).

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

import numpy as np
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


def label_ids(labels: pd.Series, name: str) -> pd.Series:
    """``labels`` as int64 class ids, or a :class:`DataError` naming the first bad value.

    Rejects text labels (with the ``label_map`` hint), missing labels, fractions (0.7 is never
    truncated to 0) and negative numbers.
    """
    if labels.isna().any():
        first = labels.index[labels.isna()][0]
        raise DataError(f"{name}: {int(labels.isna().sum())} label(s) are missing (first at row {first}). "
                        "Drop or fill those rows before loading.")
    try:
        numbers = pd.to_numeric(labels, errors="raise")
    except (ValueError, TypeError) as exc:
        values = sorted(map(str, set(labels)))[:5]
        raise DataError(
            f"{name}: labels must be class ids 0, 1, ... (0 = ham, 1 = spam for spam data); found values like "
            f"{values}. Pass label_map={{'ham': 0, 'spam': 1}} (with your own label names, any number of "
            "classes) to load_csv."
        ) from exc
    fractional = numbers[numbers != numbers.round()]
    if len(fractional):
        raise DataError(
            f"{name}: labels must be whole numbers (class ids); found {sorted(set(fractional.tolist()))[:5]} "
            f"(first at row {fractional.index[0]}). A label like 0.7 is a score, not a class: round or map it first."
        )
    numbers = numbers.astype("int64")
    negative = sorted(set(numbers[numbers < 0].tolist()))
    if negative:
        raise DataError(f"{name}: labels must be class ids 0, 1, ...; found negative value(s) {negative[:5]}.")
    return numbers


def validate(df: pd.DataFrame, name: str = "data", num_classes: int | None = None) -> pd.DataFrame:
    """Check a ``text``/``label`` frame and return it with clean dtypes.

    Labels are class ids ``0 .. K-1`` (whole numbers; 1 = spam for the spam datasets). With
    ``num_classes`` (K) given, every label must be below it (a class may be absent, as in a small
    subset); without it, the classes present must be ``0 .. max`` with none skipped. Raises
    :class:`DataError` for missing columns, non-string or empty texts, missing, fractional or
    negative labels, a skipped class id, or fewer than two classes.
    The frame's ``attrs["class_names"]`` (set by :func:`load_csv`) is kept.
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
    labels = label_ids(df["label"], name)
    present = sorted(set(labels.tolist()))
    if num_classes is not None:
        too_big = [c for c in present if c >= num_classes]
        if too_big:
            raise DataError(
                f"{name}: label(s) {too_big} but the model has {num_classes} classes (ids 0..{num_classes - 1}). "
                f"Build the model with num_labels={max(present) + 1}, or map your labels to 0..{num_classes - 1}."
            )
    else:
        skipped = sorted(set(range(present[-1] + 1)) - set(present))
        if skipped:
            raise DataError(
                f"{name}: labels must be class ids 0..K-1 with none skipped (for spam data: 0 = ham, 1 = spam); "
                f"found {present}, no row has {skipped}. Map your classes to consecutive ids first "
                "(load_csv takes a label_map)."
            )
    if len(present) < 2:
        only = LABELS.get(present[0], f"class {present[0]}") if num_classes in (None, 2) else f"class {present[0]}"
        raise DataError(
            f"{name}: only one class ({only}) is present; a classifier needs examples of at least two classes "
            "(for spam data: ham (0) and spam (1))."
        )
    out = pd.DataFrame({"text": df["text"].astype(str).values, "label": labels.values})
    if "class_names" in df.attrs:
        out.attrs["class_names"] = list(df.attrs["class_names"])
    return out


def class_names(df: pd.DataFrame, num_classes: int | None = None) -> list[str]:
    """The names of the classes 0..K-1 of a frame: those :func:`load_csv` stored from its ``label_map``,
    ``["ham", "spam"]`` for two classes, ``["class 0", "class 1", ...]`` otherwise."""
    names = df.attrs.get("class_names") if hasattr(df, "attrs") else None
    k = num_classes if num_classes is not None else (int(df["label"].max()) + 1 if len(df) else 2)
    if names and len(names) == k:
        return list(names)
    return default_class_names(k)


def default_class_names(num_classes: int) -> list[str]:
    """``["ham", "spam"]`` for two classes (the workbook's spam data), else ``["class 0", "class 1", ...]``."""
    return [LABELS[0], LABELS[1]] if num_classes == 2 else [f"class {i}" for i in range(num_classes)]


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
    encoding: str = "utf-8",
    **read_csv_kwargs,
) -> pd.DataFrame:
    """Load your own labelled texts from a CSV file, with two classes or more.

    ``label_map`` turns your label values into class ids 0..K-1, e.g. ``{"ham": 0, "spam": 1}`` or
    ``{"billing": 0, "bug": 1, "account": 2}``; its keys, ordered by id, become the class names
    (``df.attrs["class_names"]``, read by :func:`class_names` and the benchmark's per-class table).
    ``encoding``: the file's text encoding (``"latin-1"`` or ``"cp1252"`` for many spreadsheet exports).
    Extra keyword arguments go to :func:`pandas.read_csv` (``sep="\\t"``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}. Check the path (relative paths start at the notebook's folder).")
    try:
        df = pd.read_csv(path, encoding=encoding, **read_csv_kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path.name} is not valid {encoding} text (byte {exc.object[exc.start:exc.start + 1]!r} at "
            f"position {exc.start}). Pass its encoding, e.g. load_csv(..., encoding='latin-1') or "
            "encoding='cp1252' for files saved by Excel on Windows."
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path.name} is empty (no header, no rows). Check that you saved the file "
                        "with a header line such as 'text,label' and some rows.") from exc
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataError(
            f"{path.name}: column(s) {missing} not found; the file has {list(df.columns)}. "
            "Pass text_column=... and label_column=... with the right names."
        )
    labels = df[label_column]
    names = None
    if label_map is not None:
        label_map = dict(label_map)
        ids = sorted(label_map.values()) if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 for v in label_map.values()) else None
        if ids != list(range(len(label_map))):
            raise DataError(f"label_map must give each label its own class id 0..{len(label_map) - 1}; "
                            f"got {label_map}.")
        unknown = sorted(map(str, set(labels) - set(label_map)))
        if unknown:
            raise DataError(f"{path.name}: label value(s) {unknown[:5]} are not in label_map {label_map}.")
        labels = labels.map(label_map)
        names = [str(k) for k, _ in sorted(label_map.items(), key=lambda kv: kv[1])]
    frame = pd.DataFrame({"text": df[text_column], "label": labels})
    out = validate(frame, path.name, num_classes=len(names) if names else None)
    if names:
        out.attrs["class_names"] = names
    return out


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


def _stratified(df: pd.DataFrame, seed: int, **sizes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's stratified ``train_test_split`` with a clear error when a class is too small."""
    try:
        return train_test_split(df, stratify=df["label"], random_state=seed, **sizes)
    except ValueError as exc:
        counts = df["label"].value_counts().sort_index().to_dict()
        raise DataError(
            f"Cannot split with every class in every part: rows per class {counts} ({exc}). "
            "Collect more examples of the rare classes, or use smaller val_size/test_size."
        ) from exc


def _with_names(part: pd.DataFrame, names) -> pd.DataFrame:
    part = part.reset_index(drop=True)
    if names:
        part.attrs["class_names"] = list(names)
    return part


def split(df: pd.DataFrame, val_size: float = 0.1, test_size: float = 0.2, seed: int = 0) -> Splits:
    """Stratified, seeded train / validation / test split (fractions of the whole frame).

    Every class keeps its share in each part (any number of classes; each needs a few rows).
    The same ``df`` and ``seed`` always give the same split, so every chapter
    evaluates on the same test messages. ``attrs["class_names"]`` is kept on every part.
    """
    df = validate(df)
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise DataError(f"val_size and test_size must be in (0, 1) and sum below 1; got {val_size}, {test_size}.")
    names = df.attrs.get("class_names")
    rest, test = _stratified(df, seed, test_size=test_size)
    train, val = _stratified(rest, seed, test_size=val_size / (1 - test_size))
    return Splits(*(_with_names(part, names) for part in (train, val, test)))


def sample(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """A stratified random subset of ``n`` rows (the whole frame if it has ``n`` or fewer)."""
    names = df.attrs.get("class_names")
    if n >= len(df):
        return _with_names(df, names)
    part, _ = _stratified(df, seed, train_size=n)
    return _with_names(part, names)


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
