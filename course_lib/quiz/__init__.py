"""Self-check quizzes: load the YAML quiz bank, grade answers, keep progress, show quizzes.

The bank is a folder of YAML files (``quizzes/`` at the repository root, one file per
chapter; see ``quizzes/README.md`` for the format). In a notebook::

    from course_lib.quiz import show_quiz
    show_quiz("01_baseline_and_metrics")                       # the chapter's quiz
    show_quiz("03_quantization", answers={"quant-my-size-ratio": 3.1})  # numbers measured here

Grading is plain Python and needs no browser::

    quiz = load_quiz("00_cheat_sheet")
    quiz["cs-mcq-1"].check("A")          # -> Result(correct=True, feedback=...)

Progress (attempts, last answer, right or wrong) is saved after every answer to
``quiz_progress.json`` in :func:`course_lib.config.cache_dir`, so a kernel restart loses
nothing: :func:`score`, :func:`overall_progress`, :func:`mistakes`, :func:`review_mistakes`.

Safety: YAML is read with ``yaml.safe_load``; nothing from a quiz file is evaluated, and
quiz text is rendered by markdown-it-py with raw HTML off, so a quiz file cannot inject HTML.

The package: :mod:`~course_lib.quiz.bank` (question model + YAML parser),
:mod:`~course_lib.quiz.markdown` (quiz text to safe HTML), :mod:`~course_lib.quiz.progress`
(saved answers), :mod:`~course_lib.quiz.views` (the ipywidgets views) and
:mod:`~course_lib.quiz.notebook` (``show_quiz``: widgets in a kernel, text elsewhere).
This module re-exports the public names, so ``from course_lib import quiz; quiz.show_quiz(...)``
and ``quiz.load_bank()`` work as before.
"""


from .bank import (  # noqa: F401 - re-exported
    _LETTERS,
    DIFFICULTIES,
    FROM_NOTEBOOK,
    Checklist,
    Concept,
    Flashcard,
    MultipleChoice,
    Numeric,
    Practice,
    Question,
    Quiz,
    QuizError,
    QuizFormatError,
    QuizNotFoundError,
    Result,
    _fmt_number,
    bank_dir,
    list_quizzes,
    load_bank,
    load_quiz,
)
from .markdown import markdown_to_html  # noqa: F401
from .notebook import quiz_widget, review_mistakes, show_quiz  # noqa: F401
from .progress import Progress, mistakes, overall_progress, reset_progress, score  # noqa: F401

__all__ = [
    "DIFFICULTIES",
    "FROM_NOTEBOOK",
    "Checklist",
    "Concept",
    "Flashcard",
    "MultipleChoice",
    "Numeric",
    "Practice",
    "Progress",
    "Question",
    "Quiz",
    "QuizError",
    "QuizFormatError",
    "QuizNotFoundError",
    "Result",
    "bank_dir",
    "list_quizzes",
    "load_bank",
    "load_quiz",
    "markdown_to_html",
    "mistakes",
    "overall_progress",
    "quiz_widget",
    "reset_progress",
    "review_mistakes",
    "score",
    "show_quiz",
]
