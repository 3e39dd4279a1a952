"""Quiz progress: every answer saved to ``quiz_progress.json`` in :func:`course_lib.config.cache_dir`
(attempts, last answer, right or wrong), so a kernel restart loses nothing."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

from .. import config
from .bank import Question, Quiz, Result, load_bank, load_quiz

PROGRESS_FILE = "quiz_progress.json"
PROGRESS_VERSION = 1


def default_progress_path() -> Path:
    """``quiz_progress.json`` in :func:`course_lib.config.cache_dir` (honours ``COURSE_CACHE``)."""
    return config.cache_dir() / PROGRESS_FILE


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class Progress:
    """Answers saved across sessions: one record per question id.

    A record holds ``quiz``, ``type``, ``attempts``, ``last_response``, ``correct``,
    ``timestamp`` (UTC, ISO 8601) and, for checklists, ``score``/``total``. The file is
    rewritten atomically after every answer. A file that cannot be parsed is moved aside
    to ``quiz_progress.json.bak`` (with a warning) and progress starts afresh.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_progress_path()
        self.records: dict[str, dict] = {}
        self._read_failed = False
        self.load()

    def __repr__(self) -> str:
        return f"<Progress: {len(self.records)} questions answered>"

    # storage ---------------------------------------------------------------
    def load(self) -> "Progress":
        """(Re)read the file; keeps what other notebooks or kernels have saved meanwhile."""
        self.records = self._read()
        return self

    def _backup_path(self) -> Path:
        cand = self.path.with_name(self.path.name + ".bak")
        n = 1
        while cand.exists():
            cand = self.path.with_name(f"{self.path.name}.bak{n}")
            n += 1
        return cand

    def _move_aside(self, reason: str) -> None:
        backup = self._backup_path()
        try:
            os.replace(self.path, backup)
            where = f"it was moved to {backup}"
        except OSError as exc:  # pragma: no cover - unusual file systems
            where = f"it could not be moved aside ({exc})"
        warnings.warn(f"Quiz progress file {self.path} is unreadable ({reason}); {where} "
                      "and progress starts afresh.", RuntimeWarning, stacklevel=3)

    def _read(self) -> dict[str, dict]:
        self._read_failed = False
        if not self.path.exists():
            return {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            self._read_failed = True
            warnings.warn(f"Could not read quiz progress {self.path} ({exc}); answers will not be saved "
                          "this session, so the file is left untouched.", RuntimeWarning, stacklevel=3)
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self._move_aside(f"not valid JSON: {exc}")
            return {}
        if not isinstance(data, dict) or not isinstance(data.get("questions"), dict):
            self._move_aside("not a quiz progress file: no 'questions' mapping")
            return {}
        records, bad = {}, []
        for qid, rec in data["questions"].items():
            if isinstance(rec, dict) and isinstance(rec.get("correct"), bool):
                records[str(qid)] = rec
            else:
                bad.append(str(qid))
        if bad:
            backup = self._backup_path()
            try:
                backup.write_bytes(raw)
                saved = f"a copy of the file is in {backup}"
            except OSError as exc:  # pragma: no cover
                saved = f"no copy could be made ({exc})"
            warnings.warn(f"Quiz progress {self.path}: ignoring {len(bad)} malformed record(s) "
                          f"({', '.join(bad[:5])}); {saved}.", RuntimeWarning, stacklevel=3)
        return records

    def save(self) -> None:
        """Write the records atomically (temporary file + ``os.replace``)."""
        if self._read_failed:
            warnings.warn(f"Quiz progress not saved: {self.path} could not be read earlier.",
                          RuntimeWarning, stacklevel=2)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": PROGRESS_VERSION, "questions": self.records},
                             indent=1, sort_keys=True, ensure_ascii=False, default=str)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".quiz_progress.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    # answers ---------------------------------------------------------------
    def record(self, question: Question, response: Any, result: Result) -> dict:
        """Store one answer (re-reading the file first) and save at once."""
        self.load()
        rec = dict(self.records.get(question.id, {}))
        stored = result.response if result.response is not None else response
        if not isinstance(stored, (str, int, float, bool, type(None))):
            stored = str(stored)
        rec.update(quiz=question.quiz, type=question.type, attempts=int(rec.get("attempts", 0)) + 1,
                   last_response=stored, correct=bool(result.correct), timestamp=_now())
        if result.score is not None:
            rec.update(score=result.score, total=result.total)
        self.records[question.id] = rec
        try:
            self.save()
        except OSError as exc:
            warnings.warn(f"Could not save quiz progress to {self.path}: {exc}", RuntimeWarning, stacklevel=2)
        return rec

    def get(self, question_id: str) -> dict | None:
        return self.records.get(question_id)

    def score(self, quiz: "Quiz | str") -> tuple[int, int]:
        """(questions whose last answer was right, questions in the quiz)."""
        quiz = quiz if isinstance(quiz, Quiz) else load_quiz(quiz)
        right = sum(1 for q in quiz.questions if (self.records.get(q.id) or {}).get("correct") is True)
        return right, len(quiz.questions)

    def overall(self, bank: Mapping[str, Quiz] | None = None):
        """A DataFrame with one row per quiz: answered, correct, total."""
        import pandas as pd

        bank = load_bank() if bank is None else bank
        rows = []
        for name, quiz in bank.items():
            answered = sum(1 for q in quiz.questions if q.id in self.records)
            right, total = self.score(quiz)
            rows.append({"quiz": name, "title": quiz.title, "answered": answered, "correct": right,
                         "total": total})
        return pd.DataFrame(rows, columns=["quiz", "title", "answered", "correct", "total"])

    def mistakes(self, bank: Mapping[str, Quiz] | None = None) -> list[Question]:
        """Questions whose last answer was wrong (flashcards: marked "review again"), in bank order."""
        bank = load_bank() if bank is None else bank
        return [q for quiz in bank.values() for q in quiz.questions
                if (self.records.get(q.id) or {}).get("correct") is False]

    def reset(self, quiz: "Quiz | str | None" = None) -> None:
        """Forget every answer, or those of one quiz."""
        self.load()
        if quiz is None:
            self.records = {}
        else:
            quiz = quiz if isinstance(quiz, Quiz) else load_quiz(quiz)
            for qid in quiz.ids:
                self.records.pop(qid, None)
        self.save()


def score(name: str | Quiz) -> tuple[int, int]:
    """(right, total) for one quiz, from the saved progress."""
    return Progress().score(name)


def overall_progress():
    """Progress across the workbook: a DataFrame with one row per quiz."""
    return Progress().overall()


def mistakes() -> list[Question]:
    """The questions of the whole bank whose last answer was wrong."""
    return Progress().mistakes()


def reset_progress(name: str | Quiz | None = None) -> None:
    """Forget saved answers (all of them, or one quiz's)."""
    Progress().reset(name)
