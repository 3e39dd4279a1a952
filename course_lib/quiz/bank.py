"""The quiz bank: the question model (:class:`Question` and its five types, :class:`Quiz`,
:class:`Result`) and the YAML parser that loads and validates the bank (``quizzes/`` at the
repository root; format in ``quizzes/README.md``). YAML is read with ``yaml.safe_load`` and
nothing from a quiz file is evaluated.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import math
import numbers
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

import yaml

from .markdown import md_plain as _md_plain
from .markdown import md_prose as _md_prose

DIFFICULTIES = ("easy", "medium", "hard")
FROM_NOTEBOOK = "from_notebook"
ENV_QUIZ_DIR = "COURSE_QUIZ_DIR"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_STORED_TEXT = 5000


# --------------------------------------------------------------------------- errors


class QuizError(Exception):
    """Base class of the quiz errors."""


class QuizFormatError(QuizError, ValueError):
    """A quiz file is malformed. The message names the file, the question and the problem."""

    def __init__(self, message: str, path: Path | str | None = None, problems: list[str] | None = None):
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.problems = list(problems or [message])


class QuizNotFoundError(QuizError, FileNotFoundError):
    """The quiz bank folder, or a quiz in it, cannot be found."""


# --------------------------------------------------------------------------- text helpers


def _fmt_number(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def _indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + ln if ln.strip() else ln for ln in text.splitlines())


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """The outcome of :meth:`Question.check`.

    ``feedback`` is what to show right away (right/wrong, the option's feedback, the
    explanation); ``solution`` is the worked solution shown after answering (practice
    steps, quick check and common mistakes; a flashcard's answer; a model answer).
    Checklists also fill ``score``/``total`` (concepts found / concepts) and
    ``found``/``missing`` (concept names). ``response`` is the answer in the form saved
    to the progress file. ``retry_feedback`` (wrong answers only) is the feedback without the
    right answer, for a learner who may try again (the views show it on a first wrong try).
    """

    correct: bool
    feedback: str
    solution: str = ""
    score: int | None = None
    total: int | None = None
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    response: Any = None
    retry_feedback: str = ""

    def __str__(self) -> str:
        return self.feedback + ("\n\n" + self.solution if self.solution else "")


# --------------------------------------------------------------------------- questions


@dataclass(kw_only=True)
class Question:
    """A question of the bank. Subclasses implement :meth:`check`."""

    type: ClassVar[str] = ""
    label: ClassVar[str] = ""

    id: str
    prompt: str
    difficulty: str | None = None
    source: str | None = None
    hint: str | None = None
    quiz: str | None = None  # stem of the file the question comes from

    def check(self, response: Any) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    # rendering -----------------------------------------------------------
    def _tag(self) -> str:
        return self.label + (f", {self.difficulty}" if self.difficulty else "")

    def to_text(self, number: int | None = None, show_answers: bool = False) -> str:
        head = f"{number}. " if number is not None else ""
        lines = [f"{head}[{self._tag()}] " + _indent(self.prompt.strip()).lstrip()]
        body = self._text_body(show_answers)
        if body:
            lines.append(_indent(body))
        return "\n".join(lines)

    def to_markdown(self, number: int | None = None, show_answers: bool = False) -> str:
        head = f"**Question {number}**" if number is not None else "**Question**"
        parts = [f"{head} · *{self._tag()}*", _md_prose(self.prompt.strip())]
        body = self._markdown_body(show_answers)
        if body:
            parts.append(body)
        return "\n\n".join(parts)

    def _text_body(self, show_answers: bool) -> str:
        return ""

    def _markdown_body(self, show_answers: bool) -> str:
        return ""


@dataclass(kw_only=True)
class Flashcard(Question):
    """A recall card: the learner thinks of the answer, flips the card and grades themself."""

    type: ClassVar[str] = "flashcard"
    label: ClassVar[str] = "flashcard"

    answer: str

    _YES: ClassVar[set] = {"yes", "y", "true", "1", "knew", "known", "i knew it", "right", "correct"}
    _NO: ClassVar[set] = {"no", "n", "false", "0", "review", "again", "review again", "wrong"}

    def check(self, response: Any) -> Result:
        """``response`` is True ("I knew it") or False ("show it to me again")."""
        if isinstance(response, str):
            key = response.strip().lower()
            if key in self._YES:
                response = True
            elif key in self._NO:
                response = False
        if not isinstance(response, (bool, int)) or isinstance(response, int) and response not in (0, 1):
            raise ValueError(
                f"Flashcard {self.id!r} is self-graded: answer True (I knew it) or False (review again), "
                f"not {response!r}."
            )
        knew = bool(response)
        feedback = ("✅ Marked as known." if knew else
                    "🔁 Marked for review: it will come back in `review_mistakes()`.")
        return Result(correct=knew, feedback=feedback, solution="**Answer:** " + self.answer.strip(),
                      response=knew)

    def _text_body(self, show_answers: bool) -> str:
        if show_answers:
            return "Answer: " + self.answer.strip()
        return "(Think of your answer, then flip the card in the notebook.)"

    def _markdown_body(self, show_answers: bool) -> str:
        if show_answers:
            return "**Answer:** " + _md_prose(self.answer.strip())
        return "*Think of your answer, then flip the card in the notebook.*"


@dataclass(kw_only=True)
class MultipleChoice(Question):
    """One right option among several. Answer with the option text, its index or its letter."""

    type: ClassVar[str] = "multiple_choice"
    label: ClassVar[str] = "multiple choice"

    options: list[str]
    answer: str
    explanation: str
    feedback: dict[str, str] = field(default_factory=dict)

    @property
    def answer_index(self) -> int:
        return self.options.index(self.answer)

    @property
    def answer_letter(self) -> str:
        return _LETTERS[self.answer_index]

    def display_order(self) -> list[int]:
        """The option indices in the order the widgets show them: shuffled, seeded by the question id.

        The same on every run, kernel and machine (SHA-256 of the id, not Python's salted hash),
        so a saved answer (stored as the option's text) still names the same option. The text and
        markdown renderings and :meth:`check`'s letters keep the file order.
        """
        seed = int.from_bytes(hashlib.sha256(self.id.encode("utf-8")).digest()[:8], "big")
        order = list(range(len(self.options)))
        random.Random(seed).shuffle(order)
        return order

    def option_index(self, response: Any) -> int:
        """The index of the option meant by ``response`` (text, 0-based index or letter)."""
        n = len(self.options)
        if isinstance(response, numbers.Integral) and not isinstance(response, bool):
            if 0 <= int(response) < n:
                return int(response)
        elif isinstance(response, str):
            s = response.strip()
            if s in self.options:
                return self.options.index(s)
            norm = " ".join(s.split()).casefold()
            for i, opt in enumerate(self.options):
                if " ".join(opt.split()).casefold() == norm:
                    return i
            m = re.fullmatch(r"\(?([A-Za-z])[.)]?", s)
            if m and _LETTERS.index(m.group(1).upper()) < n:
                return _LETTERS.index(m.group(1).upper())
        raise ValueError(
            f"{response!r} is not an option of question {self.id!r}: give the option's text, "
            f"its index (0-{n - 1}) or its letter (A-{_LETTERS[n - 1]})."
        )

    def check(self, response: Any, order: list[int] | None = None) -> Result:
        """Grade ``response`` (option text, 0-based index in file order, or letter in file order).

        ``order``: the order the options were shown in (:meth:`display_order`), so that the
        feedback's letters are the ones the learner saw; default the file order.
        """
        idx = self.option_index(response)
        letter = (lambda i: _LETTERS[order.index(i)]) if order is not None else (lambda i: _LETTERS[i])
        chosen = self.options[idx]
        correct = chosen == self.answer
        parts = []
        if correct:
            parts.append(f"✅ Correct: {letter(idx)}. {chosen}")
        else:
            parts.append(f"❌ Not quite: {letter(idx)}. {chosen} is not the best answer.")
        if self.feedback.get(chosen):
            parts.append(self.feedback[chosen].strip())
        retry = "" if correct else "\n\n".join(parts)
        if not correct:
            parts.append(f"The right answer is **{letter(self.answer_index)}. {self.answer}**")
        parts.append(self.explanation.strip())
        return Result(correct=correct, feedback="\n\n".join(parts), solution=self._solution(), response=chosen,
                      retry_feedback=retry)

    def _solution(self) -> str:
        return ""

    def _options_text(self) -> str:
        return "\n".join(f"{_LETTERS[i]}. {opt}" for i, opt in enumerate(self.options))

    def _text_body(self, show_answers: bool) -> str:
        body = self._options_text()
        if show_answers:
            body += f"\nAnswer: {self.answer_letter}. {self.answer}\n{self.explanation.strip()}"
        return body

    def _markdown_body(self, show_answers: bool) -> str:
        body = "\n".join(f"- **{_LETTERS[i]}.** {_md_plain(opt)}" for i, opt in enumerate(self.options))
        if show_answers:
            body += (f"\n\n**Answer:** {self.answer_letter}. {_md_plain(self.answer)}\n\n"
                     + _md_prose(self.explanation.strip()))
        return body


@dataclass(kw_only=True)
class Practice(MultipleChoice):
    """A multiple-choice problem with a worked solution, a hint, a quick check and common mistakes."""

    type: ClassVar[str] = "practice"
    label: ClassVar[str] = "practice"

    steps: list[str]
    common_mistakes: list[str]
    quick_check: str

    def _solution(self) -> str:
        steps = "\n".join(f"{i}. {s.strip()}" for i, s in enumerate(self.steps, 1))
        mistakes = "\n".join(f"- {m.strip()}" for m in self.common_mistakes)
        return (f"**Step-by-step solution**\n\n{steps}\n\n**Quick check:** {self.quick_check.strip()}"
                f"\n\n**Common mistakes**\n\n{mistakes}")

    def _text_body(self, show_answers: bool) -> str:
        body = super()._text_body(show_answers)
        if show_answers:
            body += "\n" + self._solution().replace("**", "")
        return body

    def _markdown_body(self, show_answers: bool) -> str:
        body = super()._markdown_body(show_answers)
        if show_answers:
            body += "\n\n" + _md_prose(self._solution())
        return body


_STOPWORDS = frozenset("""
a an the and or nor of to in on for with without is are was were be been being it its this that these those
as by at from than then not no only every each but so which what how more most such eg ie etc usually often
typically also very much can may might must should would could will into onto over under about off up down out
one two their there they them your you we our has have had do does did become becomes get gets use uses used
using kept keep same like some any all other others per via while when where who whom whose why
""".split())
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# a sentence ends at . ! ? followed by a space (not after e.g. / i.e. / vs.), at a line break or a semicolon
_SENTENCE_RE = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<!vs\.)(?<=[.!?])\s+|\n+|;\s*", re.IGNORECASE)


def _stem(word: str) -> str:
    """A word's start that its other forms share: "phones" -> "phone", "outputs" -> "outpu"."""
    w = word.lower()
    if len(w) >= 6:
        return w[:5]
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_RE.split(text) if s and s.strip()]


def _word_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase.strip()) if w]
    start = r"(?<!\w)" if re.match(r"\w", phrase.strip()) else ""
    return start + r"[\s\-]*".join(words)


@dataclass(frozen=True)
class Concept:
    """A key idea of a checklist answer and the words or phrases that show it.

    Its *terms* are its keywords plus the content words of its name (stopwords and words that
    other concepts of the same question also name left out). One sentence that holds two
    different terms (or one keyword of two or more words, e.g. "fewer parameters") is
    evidence for the concept; a lone word is only a mention (see :meth:`evidence`).
    """

    name: str
    keywords: tuple[str, ...]

    def pattern(self) -> re.Pattern:
        """Any keyword, at a word start, case-insensitive; spaces and hyphens interchangeable."""
        return re.compile("|".join(_word_pattern(kw) for kw in self.keywords), re.IGNORECASE)

    def found_in(self, text: str) -> bool:
        """One of the keywords appears in ``text`` (a mention, not necessarily evidence)."""
        return bool(self.pattern().search(text))

    def name_words(self, shared: frozenset[str] = frozenset()) -> list[str]:
        """Stems of the content words of the name, without those in ``shared`` (stems)."""
        out = []
        for w in _WORD_RE.findall(self.name):
            stem = _stem(w)
            if len(w) >= 3 and w.lower() not in _STOPWORDS and stem not in shared and stem not in out:
                out.append(stem)
        return out

    def terms(self, shared: frozenset[str] = frozenset()) -> list[str]:
        """Regex patterns of the concept's terms: its keywords and its name's content words."""
        return ([_word_pattern(kw) for kw in self.keywords]
                + [r"(?<!\w)" + re.escape(stem) + r"\w*" for stem in self.name_words(shared)])

    def evidence(self, text: str, shared: frozenset[str] = frozenset(),
                 lists: frozenset[str] = frozenset()) -> tuple[str, str]:
        """``("shown", sentence)``, ``("mentioned", word)`` or ``("", "")`` for the answer ``text``.

        Shown: one sentence holds two different terms of the concept (non-overlapping matches),
        or a keyword of two or more words. Mentioned: a term appears, but alone, or only in a
        sentence of ``lists`` (a bare list of keywords, see :meth:`Checklist.keyword_lists`).
        """
        strong_kw = [kw for kw in self.keywords if len(re.split(r"[\s\-]+", kw.strip())) >= 2]
        strong = re.compile("|".join(_word_pattern(kw) for kw in strong_kw), re.IGNORECASE) if strong_kw else None
        terms = self.terms(shared)
        mention = ""
        for sentence in _sentences(text):
            places = _places(terms, sentence)
            if places and not mention:
                a, b = places[0]
                mention = sentence[a:b] + re.match(r"\w*", sentence[b:]).group(0)  # the whole word
            if sentence in lists:
                continue
            if len(places) >= 2 or (strong is not None and strong.search(sentence)):
                return "shown", sentence.strip()
        return ("mentioned", mention) if mention else ("", "")


def _places(patterns: list[str], sentence: str) -> list[tuple[int, int]]:
    """The distinct, non-overlapping (start, end) places where any of ``patterns`` matches."""
    spans = sorted(m.span() for p in patterns for m in re.finditer(p, sentence, re.IGNORECASE))
    places: list[tuple[int, int]] = []
    for a, b in spans:
        if places and a < places[-1][1]:
            places[-1] = (places[-1][0], max(b, places[-1][1]))
        else:
            places.append((a, b))
    return places


@dataclass(kw_only=True)
class Checklist(Question):
    """An open question graded by the key concepts the free-text answer explains.

    A concept counts when one sentence of the answer shows it: two different terms of the
    concept in that sentence (its keywords and the content words of its name; matching is
    case-insensitive and starts at a word boundary, so "compress" also matches "compression",
    and spaces and hyphens inside a keyword are interchangeable: "8-bit" matches "8 bit"), or
    one of its keywords of two or more words. A lone keyword is reported as mentioned, not
    counted, so a list of keywords ("teacher student output accuracy phone") scores low.
    """

    type: ClassVar[str] = "checklist"
    label: ClassVar[str] = "open question"

    concepts: list[Concept]
    answer: str | None = None  # a model answer, shown after checking
    pass_mark: int | None = None  # concepts needed to count as correct (default: all)

    def shared_words(self) -> frozenset[str]:
        """Stems that the names of two or more concepts use ("model", "teacher"): no evidence alone."""
        counts: dict[str, int] = {}
        for c in self.concepts:
            for stem in c.name_words():
                counts[stem] = counts.get(stem, 0) + 1
        return frozenset(stem for stem, n in counts.items() if n >= 2)

    def keyword_lists(self, text: str) -> frozenset[str]:
        """Sentences of ``text`` that are bare lists of terms: at least 5 words, 75 % or more of
        them terms of this question's concepts ("teacher student output accuracy phone")."""
        shared = self.shared_words()
        terms = [t for c in self.concepts for t in c.terms(shared)]
        out = set()
        for sentence in _sentences(text):
            words = [m.span() for m in re.finditer(r"\w+", sentence)]
            if len(words) < 5:
                continue
            places = _places(terms, sentence)
            covered = sum(1 for a, b in words if any(pa < b and a < pb for pa, pb in places))
            if covered >= 0.75 * len(words):
                out.add(sentence)
        return frozenset(out)

    def check(self, response: Any) -> Result:
        text = "" if response is None else str(response)
        shared = self.shared_words()
        lists = self.keyword_lists(text)
        found, mentioned = [], []
        for c in self.concepts:
            kind, where = c.evidence(text, shared, lists)
            if kind == "shown":
                found.append(c.name)
            elif kind == "mentioned":
                mentioned.append((c.name, where))
        missing = [c.name for c in self.concepts if c.name not in found]
        total = len(self.concepts)
        need = self.pass_mark or total
        correct = len(found) >= need
        parts = [f"You got {len(found)}/{total} concepts."]
        if found:
            parts.append("Covered: " + "; ".join(found) + ".")
        if mentioned:
            parts.append("Mentioned but not explained (say what it means here, in a sentence): "
                         + "; ".join(f"{name} (you wrote '{word}')" for name, word in mentioned) + ".")
        absent = [name for name in missing if name not in dict(mentioned)]
        if absent:
            parts.append("Missing: " + "; ".join(absent) + ".")
        if lists:
            parts.append("A list of keywords is not an explanation: write sentences that say how the "
                         "ideas connect.")
        if correct:
            parts[0] = "✅ " + parts[0]
        solution = ""
        if self.answer:
            solution = "**A model answer:** " + self.answer.strip()
        return Result(correct=correct, feedback="\n\n".join(parts), solution=solution, score=len(found),
                      total=total, found=found, missing=missing, response=text[:_MAX_STORED_TEXT])

    def _text_body(self, show_answers: bool) -> str:
        body = f"(Write a few sentences; they are scored against {len(self.concepts)} key concepts.)"
        if show_answers:
            body += "\nKey concepts: " + "; ".join(c.name for c in self.concepts)
            if self.answer:
                body += "\nA model answer: " + self.answer.strip()
        return body

    def _markdown_body(self, show_answers: bool) -> str:
        body = f"*Write a few sentences; they are scored against {len(self.concepts)} key concepts.*"
        if show_answers:
            body += "\n\n**Key concepts:** " + "; ".join(_md_plain(c.name) for c in self.concepts)
            if self.answer:
                body += "\n\n**A model answer:** " + _md_prose(self.answer.strip())
        return body


@dataclass(kw_only=True)
class Numeric(Question):
    """A number, right within an absolute ``tolerance``.

    ``answer`` may be None for a question declared ``answer: from_notebook``: the notebook
    supplies it at run time (``show_quiz(name, answers={id: value})``).
    """

    type: ClassVar[str] = "numeric"
    label: ClassVar[str] = "number"

    answer: float | None
    tolerance: float
    unit: str | None = None
    explanation: str | None = None
    from_notebook: bool = False

    def _unit(self) -> str:
        if not self.unit:
            return ""
        return self.unit if self.unit == "%" else " " + self.unit

    @staticmethod
    def parse(response: Any) -> float:
        """A number typed by a learner, as a float.

        Accepted: ``92.5``, ``92.5%``, ``1e-3``; thousands separated by commas or spaces
        (``1,000``, ``1 000``, ``12,345.6``, ``1,234,567``); a decimal comma when it cannot be
        a thousands separator (``92,55``, ``0,125``, ``1,5``: not followed by exactly three
        digits, or after a leading 0); ``1.000,5`` (dots for thousands, comma for decimals).
        So ``1,000`` is one thousand, as in English. Anything else that mixes separators
        (``1,00,0``, ``1.2.3``) raises ValueError saying how to write the number.
        """
        if isinstance(response, bool):
            raise ValueError("a number is expected, not True/False")
        if isinstance(response, numbers.Real):
            return float(response)
        if isinstance(response, str):
            s = re.sub(r"[\s\u00a0\u202f]+", " ", response.strip()).rstrip("%").strip()
            if not s:
                raise ValueError("type a number")
            normal = _normalize_number(s)
            if normal is not None:
                try:
                    return float(normal)
                except ValueError:
                    pass
            if re.fullmatch(r"[+\-]?[\d.,' ]+(e[+\-]?\d+)?", s, re.IGNORECASE):
                raise ValueError(
                    f"{response!r} cannot be read as one number (its commas, dots or spaces are not "
                    "thousands groups of three digits, nor one decimal separator): write it with a dot "
                    "for decimals and no thousands separators, e.g. 1000 or 0.5")
        raise ValueError(f"{response!r} is not a number")

    def check(self, response: Any) -> Result:
        if self.answer is None:
            raise ValueError(
                f"Question {self.id!r} asks for a number computed in the notebook, and none was supplied: "
                f"call show_quiz(..., answers={{{self.id!r}: value}}) or Quiz.with_answers()."
            )
        try:
            value = self.parse(response)
        except ValueError as exc:
            raise ValueError(f"Question {self.id!r}: {exc}.") from None
        correct = math.isfinite(value) and abs(value - self.answer) <= self.tolerance + 1e-12
        expected = f"{_fmt_number(self.answer)}{self._unit()}"
        tol = f" (± {_fmt_number(self.tolerance)})" if self.tolerance else ""
        retry = ""
        if correct:
            parts = [f"✅ Correct: {_fmt_number(value)}{self._unit()}" + (f", expected {expected}{tol}." if value != self.answer else ".")]
        else:
            parts = [f"❌ Not quite: you gave {_fmt_number(value)}{self._unit()}; the expected value is {expected}{tol}."]
            retry = f"❌ Not quite: you gave {_fmt_number(value)}{self._unit()}."
        if self.explanation:
            parts.append(self.explanation.strip())
        return Result(correct=correct, feedback="\n\n".join(parts), response=value, retry_feedback=retry)

    def _text_body(self, show_answers: bool) -> str:
        body = f"(Answer with a number{', in ' + self.unit if self.unit else ''}.)"
        if show_answers:
            if self.answer is None:
                body += "\nAnswer: computed in the notebook."
            else:
                body += f"\nAnswer: {_fmt_number(self.answer)}{self._unit()} (± {_fmt_number(self.tolerance)})"
                if self.explanation:
                    body += "\n" + self.explanation.strip()
        return body

    def _markdown_body(self, show_answers: bool) -> str:
        body = f"*Answer with a number{', in ' + _md_plain(self.unit) if self.unit else ''}.*"
        if show_answers:
            if self.answer is None:
                body += "\n\n**Answer:** computed in the notebook."
            else:
                body += f"\n\n**Answer:** {_fmt_number(self.answer)}{_md_plain(self._unit())}"
                if self.explanation:
                    body += "\n\n" + _md_prose(self.explanation.strip())
        return body


_GROUPED = r"[1-9]\d{{0,2}}(?:{sep}\d{{3}})+"


def _normalize_number(s: str) -> str | None:
    """``s`` with thousands separators removed and a decimal comma made a dot, or None if unclear.

    See :meth:`Numeric.parse` for what is accepted.
    """
    m = re.fullmatch(r"([+\-]?)\s*([\d.,' ]+)((?:e[+\-]?\d+)?)", s, re.IGNORECASE)
    if not m:
        return s  # "nan", "inf", "1e5": float() decides
    sign, body, exp = m.groups()
    for sep in (",", " ", "'"):  # 1,000 / 1 000 / 1'000, with an optional .decimal part
        if re.fullmatch(_GROUPED.format(sep=re.escape(sep)) + r"(?:\.\d*)?", body):
            return sign + body.replace(sep, "") + exp
    if re.fullmatch(_GROUPED.format(sep=r"\.") + r",\d*", body):  # 1.000,5 (dots for thousands)
        return sign + body.replace(".", "").replace(",", ".") + exp
    if re.fullmatch(r"\d*\.?\d*", body):  # plain: 92.5, .5, 12
        return sign + body + exp
    if re.fullmatch(r"\d+,\d+", body):  # one decimal comma that is not a thousands separator
        return sign + body.replace(",", ".") + exp
    return None


QUESTION_TYPES: dict[str, type[Question]] = {
    cls.type: cls for cls in (Flashcard, MultipleChoice, Practice, Checklist, Numeric)
}


# --------------------------------------------------------------------------- quiz


@dataclass
class Quiz:
    """One quiz file: ``name`` (file stem), ``title``, ``description``, ``questions``."""

    name: str
    title: str
    questions: list[Question]
    description: str = ""
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __getitem__(self, key: int | str) -> Question:
        if isinstance(key, str):
            for q in self.questions:
                if q.id == key:
                    return q
            raise KeyError(f"Quiz {self.name!r} has no question {key!r}; its ids are: {', '.join(self.ids)}")
        return self.questions[key]

    def __contains__(self, key: object) -> bool:
        return any(q.id == key for q in self.questions)

    @property
    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def __repr__(self) -> str:
        return f"<Quiz {self.name!r}: {self.title!r}, {len(self)} questions>"

    def with_answers(self, answers: Mapping[str, Any] | None) -> "Quiz":
        """A copy in which numeric questions get the answers computed in the notebook."""
        if not answers:
            return self
        new = copy.copy(self)
        new.questions = list(self.questions)
        numeric_ids = [q.id for q in self.questions if isinstance(q, Numeric)]
        for qid, value in answers.items():
            if qid not in self:
                raise KeyError(f"answers: quiz {self.name!r} has no question {qid!r} "
                               f"(numeric questions: {', '.join(numeric_ids) or 'none'}).")
            i = self.ids.index(qid)
            q = self.questions[i]
            if not isinstance(q, Numeric):
                raise ValueError(f"answers: question {qid!r} of quiz {self.name!r} is a {q.type} "
                                 "question; only numeric answers can be supplied.")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                raise ValueError(f"answers: the value for {qid!r} must be a finite number, not {value!r}.")
            new.questions[i] = dataclasses.replace(q, answer=float(value))
        return new

    def to_text(self, show_answers: bool = False) -> str:
        lines = [f"Quiz: {self.title}"]
        if self.description:
            lines.append(self.description.strip())
        if self.questions:
            lines.append(f"{len(self)} questions. Run this in Jupyter to answer them and get feedback.")
        for i, q in enumerate(self.questions, 1):
            lines.append("")
            lines.append(q.to_text(i, show_answers))
        return "\n".join(lines)

    def to_markdown(self, show_answers: bool = False) -> str:
        parts = [f"### Quiz: {_md_plain(self.title)}"]
        if self.description:
            parts.append(_md_prose(self.description.strip()))
        if self.questions:
            parts.append(f"*{len(self)} questions. Run this cell in Jupyter to answer them and get feedback.*")
        parts.extend(q.to_markdown(i, show_answers) for i, q in enumerate(self.questions, 1))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# --------------------------------------------------------------------------- loading & validation


def bank_dir() -> Path:
    """The folder holding the quiz YAML files: ``$COURSE_QUIZ_DIR``, else ``quizzes/`` at the repo root."""
    env = os.environ.get(ENV_QUIZ_DIR, "").strip()
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise QuizNotFoundError(f"{ENV_QUIZ_DIR} is set to {env!r}, but there is no such folder.")
    here = Path(__file__).resolve().parent  # course_lib/quiz/
    candidates = [here.parent.parent / "quizzes", Path.cwd() / "quizzes", Path.cwd().parent / "quizzes"]
    seen: list[Path] = []
    for c in candidates:
        c = c.resolve()
        if c in seen:
            continue
        seen.append(c)
        if c.is_dir():
            return c
    looked = "\n".join(f"  - {p}" for p in seen)
    raise QuizNotFoundError(
        "Could not find the quiz bank (a folder named 'quizzes' with the quiz YAML files). Looked in:\n"
        f"{looked}\nSet the environment variable {ENV_QUIZ_DIR} to that folder."
    )


def list_quizzes() -> list[str]:
    """The names (file stems) of the quizzes in the bank, sorted."""
    d = bank_dir()
    return sorted({p.stem for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()})


def _resolve(name: str | os.PathLike) -> Path:
    s = os.fspath(name)
    p = Path(s).expanduser()
    if p.suffix in (".yaml", ".yml") or os.sep in s or "/" in s:
        if p.is_file():
            return p
        raise QuizNotFoundError(f"No quiz file at {p}.")
    d = bank_dir()
    names = list_quizzes()
    prefixed = [n for n in names if n.startswith(s + "_")]
    for stem in [s] + (prefixed if len(prefixed) == 1 else []):  # "03" finds "03_quantization"
        for ext in (".yaml", ".yml"):
            if (d / (stem + ext)).is_file():
                return d / (stem + ext)
    raise QuizNotFoundError(f"No quiz named {s!r} in {d}. Available: {', '.join(names) or 'none'}.")


def load_quiz(name: str | os.PathLike) -> Quiz:
    """Load and validate one quiz: a name from the bank ("03_quantization", or just "03") or a path."""
    return _parse_file(_resolve(name))


def load_bank(directory: str | os.PathLike | None = None) -> dict[str, Quiz]:
    """Load every quiz of the bank, keyed by name, checking that ids are unique across all files."""
    d = Path(directory) if directory is not None else bank_dir()
    files = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise QuizNotFoundError(f"The quiz bank {d} holds no .yaml files.")
    bank: dict[str, Quiz] = {}
    owner: dict[str, Path] = {}
    for f in files:
        quiz = _parse_file(f)
        for q in quiz.questions:
            if q.id in owner:
                raise QuizFormatError(
                    f"{f}: question {q.id!r}: duplicate id, already used in {owner[q.id]}. "
                    "Ids must be unique across the whole bank.", f)
            owner[q.id] = f
        bank[quiz.name] = quiz
    return bank


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _type_name(v: Any) -> str:
    return "nothing" if v is None else type(v).__name__


_COMMON_FIELDS = {"id", "type", "prompt", "difficulty", "source", "hint"}
_FIELDS = {
    "flashcard": {"answer"},
    "multiple_choice": {"options", "answer", "explanation", "feedback"},
    "practice": {"options", "answer", "explanation", "feedback", "steps", "common_mistakes", "quick_check"},
    "checklist": {"concepts", "answer", "pass_mark"},
    "numeric": {"answer", "tolerance", "unit", "explanation"},
}
_REQUIRED = {
    "flashcard": ["answer"],
    "multiple_choice": ["options", "answer", "explanation"],
    "practice": ["options", "answer", "explanation", "steps", "hint", "common_mistakes", "quick_check"],
    "checklist": ["concepts"],
    "numeric": ["answer", "tolerance"],
}


def _parse_file(path: Path) -> Quiz:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise QuizFormatError(f"{path}: not UTF-8 text ({exc}).", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QuizFormatError(f"{path}: not valid YAML: {exc}", path) from None
    problems: list[str] = []
    if not isinstance(data, dict):
        raise QuizFormatError(f"{path}: the file must be a mapping with 'title' and 'questions', "
                              f"found {_type_name(data)}.", path)
    unknown = set(data) - {"title", "description", "questions"}
    if unknown:
        problems.append(f"unknown top-level field(s) {sorted(map(str, unknown))} "
                        "(allowed: title, description, questions)")
    title = data.get("title")
    if not _is_text(title):
        problems.append("'title' is missing or empty")
    description = data.get("description") or ""
    if not isinstance(description, str):
        problems.append("'description' must be text")
        description = ""
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        problems.append("'questions' must be a non-empty list")
        raw_questions = []
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_questions, 1):
        label = f"question #{i}"
        if isinstance(raw, dict) and _is_text(raw.get("id")):
            label = f"question {raw['id']!r}"
        q_problems: list[str] = []
        q = _parse_question(raw, q_problems, path.stem)
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            qid = raw["id"]
            if qid in seen:
                q_problems.append(f"duplicate id (also question #{seen[qid]} of this file)")
            else:
                seen[qid] = i
        problems.extend(f"{label}: {p}" for p in q_problems)
        if q is not None and not q_problems:
            questions.append(q)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise QuizFormatError(f"{path}: {len(problems)} problem(s) in this quiz file:\n{listing}",
                              path, [f"{path}: {p}" for p in problems])
    return Quiz(name=path.stem, title=title.strip(), description=description.strip(),
                questions=questions, path=path)


def _text_list(v: Any, field_name: str, problems: list[str]) -> list[str]:
    if not isinstance(v, list) or not v:
        problems.append(f"'{field_name}' must be a non-empty list of text, found {_type_name(v)}")
        return []
    out = []
    for j, item in enumerate(v, 1):
        if not _is_text(item):
            hint = " (quote it in the YAML, e.g. '0.5')" if isinstance(item, (int, float, bool)) else ""
            problems.append(f"'{field_name}' item {j} must be text, found {_type_name(item)} {item!r}{hint}")
        else:
            out.append(item)
    return out


def _parse_question(raw: Any, problems: list[str], quiz_name: str) -> Question | None:
    if not isinstance(raw, dict):
        problems.append(f"must be a mapping of fields, found {_type_name(raw)}")
        return None
    qid = raw.get("id")
    if not _is_text(qid):
        problems.append("'id' is missing" if qid is None else f"'id' must be text, found {_type_name(qid)} {qid!r}")
    elif not _ID_RE.match(qid):
        problems.append(f"'id' {qid!r} may only use letters, digits, '_', '-' and '.'")
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        close = difflib.get_close_matches(str(qtype), list(QUESTION_TYPES), n=1)
        problems.append(f"unknown type {qtype!r} (known: {', '.join(QUESTION_TYPES)})"
                        + (f"; did you mean {close[0]!r}?" if close else ""))
        return None
    if not _is_text(raw.get("prompt")):
        problems.append("'prompt' is missing or empty")
    diff = raw.get("difficulty")
    if diff is not None and diff not in DIFFICULTIES:
        problems.append(f"difficulty {diff!r} must be one of {', '.join(DIFFICULTIES)}")
    for opt_field in ("source", "hint"):
        if opt_field in raw and not _is_text(raw[opt_field]):
            problems.append(f"'{opt_field}' must be non-empty text")
    allowed = _COMMON_FIELDS | _FIELDS[qtype]
    unknown = sorted(map(str, set(raw) - allowed))
    if unknown:
        problems.append(f"unknown field(s) {unknown} for a {qtype} question (allowed: {', '.join(sorted(allowed))})")
    for req in _REQUIRED[qtype]:
        if raw.get(req) is None:
            problems.append(f"'{req}' is missing (required for a {qtype} question)")
    if problems:
        return None

    common = dict(id=qid, prompt=raw["prompt"], difficulty=diff, source=raw.get("source"),
                  hint=raw.get("hint"), quiz=quiz_name)
    if qtype == "flashcard":
        if not _is_text(raw["answer"]):
            problems.append("'answer' must be non-empty text")
            return None
        return Flashcard(answer=raw["answer"], **common)
    if qtype in ("multiple_choice", "practice"):
        options = _text_list(raw["options"], "options", problems)
        if len(options) == 1:
            problems.append("needs at least two options")
        if len(options) > len(_LETTERS):
            problems.append(f"has more than {len(_LETTERS)} options")
        dupes = sorted({o for o in options if options.count(o) > 1})
        if dupes:
            problems.append(f"duplicate option(s) {dupes}")
        answer = raw["answer"]
        if not isinstance(answer, str):
            problems.append(f"'answer' must be the exact text of one option, found {_type_name(answer)} {answer!r}")
        elif options and answer not in options:
            close = difflib.get_close_matches(answer, options, n=1, cutoff=0.5)
            problems.append(f"answer {answer!r} is not one of the options"
                            + (f"; closest option: {close[0]!r}" if close else ""))
        if not _is_text(raw["explanation"]):
            problems.append("'explanation' must be non-empty text")
        feedback = raw.get("feedback") or {}
        if not isinstance(feedback, dict):
            problems.append("'feedback' must map option text to feedback text")
            feedback = {}
        for key, val in feedback.items():
            if key not in options:
                problems.append(f"feedback for {key!r}, which is not one of the options")
            if not _is_text(val):
                problems.append(f"feedback for {key!r} must be non-empty text")
        extra = {}
        if qtype == "practice":
            extra["steps"] = _text_list(raw["steps"], "steps", problems)
            extra["common_mistakes"] = _text_list(raw["common_mistakes"], "common_mistakes", problems)
            if not _is_text(raw["quick_check"]):
                problems.append("'quick_check' must be non-empty text")
            extra["quick_check"] = raw["quick_check"]
        if problems:
            return None
        cls = Practice if qtype == "practice" else MultipleChoice
        return cls(options=list(options), answer=answer, explanation=raw["explanation"],
                   feedback=dict(feedback), **extra, **common)
    if qtype == "checklist":
        raw_concepts = raw["concepts"]
        concepts: list[Concept] = []
        if not isinstance(raw_concepts, list) or not raw_concepts:
            problems.append("'concepts' must be a non-empty list of {name, keywords}")
            return None
        for j, c in enumerate(raw_concepts, 1):
            if not isinstance(c, dict) or not _is_text(c.get("name")):
                problems.append(f"concept {j} needs a 'name' (and 'keywords')")
                continue
            bad = set(c) - {"name", "keywords"}
            if bad:
                problems.append(f"concept {c['name']!r}: unknown field(s) {sorted(map(str, bad))}")
            kws = _text_list(c.get("keywords"), f"keywords of concept {c['name']!r}", problems)
            concepts.append(Concept(name=c["name"].strip(), keywords=tuple(k.strip() for k in kws)))
        names = [c.name for c in concepts]
        if len(set(names)) != len(names):
            problems.append("concept names must be unique")
        answer = raw.get("answer")
        if answer is not None and not _is_text(answer):
            problems.append("'answer' (the model answer) must be text")
        pass_mark = raw.get("pass_mark")
        if pass_mark is not None and (isinstance(pass_mark, bool) or not isinstance(pass_mark, int)
                                      or not 1 <= pass_mark <= len(raw_concepts)):
            problems.append(f"'pass_mark' must be a whole number from 1 to {len(raw_concepts)}")
        if problems:
            return None
        return Checklist(concepts=concepts, answer=answer, pass_mark=pass_mark, **common)
    # numeric
    answer = raw["answer"]
    from_nb = answer == FROM_NOTEBOOK
    if not from_nb and (isinstance(answer, bool) or not isinstance(answer, (int, float))
                        or not math.isfinite(answer)):
        problems.append(f"'answer' must be a number or {FROM_NOTEBOOK!r}, found {_type_name(answer)} {answer!r}")
    tol = raw["tolerance"]
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0 or not math.isfinite(tol):
        problems.append(f"'tolerance' must be a number >= 0, found {tol!r}")
    for opt_field in ("unit", "explanation"):
        if opt_field in raw and not _is_text(raw[opt_field]):
            problems.append(f"'{opt_field}' must be non-empty text")
    if problems:
        return None
    return Numeric(answer=None if from_nb else float(answer), tolerance=float(tol), unit=raw.get("unit"),
                   explanation=raw.get("explanation"), from_notebook=from_nb, **common)
