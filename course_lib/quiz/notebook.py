"""How a quiz appears in a notebook: :func:`show_quiz` displays the widgets of
:mod:`course_lib.quiz.views` in a Jupyter kernel (with the quiz as text/plain and text/markdown
alongside, stable for nbval and static exports) and prints the quiz as text anywhere else."""

from __future__ import annotations

from typing import Any, Mapping

from .bank import Quiz, load_quiz
from .progress import Progress, mistakes


def _kernel_shell():
    """The IPython shell when running in a Jupyter kernel, else None (plain Python, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


def quiz_widget(name: str | Quiz, answers: Mapping[str, Any] | None = None, progress: Progress | None = None):
    """Build (without displaying) the interactive quiz: a :class:`course_lib.quiz.views.QuizView`.

    ``view.box`` is the ipywidgets VBox; ``view.views`` the per-question views.
    """
    from . import views  # imports ipywidgets: only when a widget is wanted

    quiz = name if isinstance(name, Quiz) else load_quiz(name)
    quiz = quiz.with_answers(answers)
    return views.QuizView(quiz, progress if progress is not None else Progress())


def show_quiz(name: str | Quiz, answers: Mapping[str, Any] | None = None) -> None:
    """Show a quiz in the notebook: interactive widgets, with a readable text fallback.

    ``name``: a quiz of the bank ("01_baseline_and_metrics") or a path to a YAML file.
    ``answers``: numbers computed in the notebook for numeric questions, ``{question_id: value}``.

    In a Jupyter kernel this displays one output whose widget view is the quiz and whose
    text/plain and text/markdown forms are the readable quiz (stable between runs, so
    static exports and nbval see text). Under plain Python it prints the quiz as text.
    """
    quiz = name if isinstance(name, Quiz) else load_quiz(name)
    quiz = quiz.with_answers(answers)
    _show(quiz, lambda: quiz_widget(quiz))


def review_mistakes() -> None:
    """Show every question last answered wrong, across the workbook, to try again."""
    wrong = mistakes()
    if not wrong:
        quiz = Quiz(name="review", title="Review my mistakes", questions=[],
                    description="Nothing to review: no question is currently answered wrong.")
        _show(quiz, None)
        return
    quiz = Quiz(name="review", title="Review my mistakes", questions=wrong,
                description=f"{len(wrong)} question(s) you last answered wrong. Try them again.")
    _show(quiz, lambda: quiz_widget(quiz))


def _show(quiz: Quiz, build) -> None:
    shell = _kernel_shell()
    text = quiz.to_text()
    if shell is None:
        print(text)
        return
    from IPython.display import display

    bundle = {"text/plain": text, "text/markdown": quiz.to_markdown()}
    if build is not None:
        try:
            view = build()
        except ImportError:  # ipywidgets missing: the text is still there
            view = None
        if view is not None:
            bundle.update(view.widget_bundle())
    display(bundle, raw=True)
