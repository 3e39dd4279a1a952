"""ipywidgets views of the quizzes in :mod:`course_lib.quiz` (use ``show_quiz``, not this module).

Every piece of quiz text goes through :func:`course_lib.quiz.markdown.markdown_to_html`
(markdown-it-py with raw HTML off), so a quiz file can never inject HTML or scripts. Widgets carry stable CSS
classes (``quiz``, ``quiz-question``, ``quiz-check``, ``quiz-hint``, ``quiz-feedback``,
``quiz-score``, ``quiz-flip``...; listed in ``quizzes/README.md``) for browser tests.

Multiple-choice options are shown in an order shuffled per question id
(:meth:`~course_lib.quiz.bank.MultipleChoice.display_order`, the same on every run), lettered
A, B, ... as shown; the radio buttons' values are the options' file indices, and answers are
saved as the option's text, so a saved answer always names the same option.

A wrong answer shows the feedback for what was chosen and the hint, not the right answer: that
comes after a second wrong try, or when the learner clicks *Show answer* (``quiz-reveal``).
"""

from __future__ import annotations

import html
from typing import Any, Callable

import ipywidgets as W

from .bank import _LETTERS, _fmt_number, Checklist, Flashcard, MultipleChoice, Numeric, Practice, Question, Quiz, Result
from .markdown import markdown_to_html
from .progress import Progress

_OK = "#1a7f37"
_BAD = "#b3261e"
_NOTE = "#555555"

# Long options wrap inside their own row: ipywidgets gives each radio label a fixed height of one
# line, so a wrapped label ran under the next option (its radio button hidden). One <style> per
# quiz, scoped to the quiz's own classes.
QUIZ_CSS = """
.quiz .quiz-options { width: 100% !important; max-width: 100%; }
.quiz .quiz-options .widget-radio-box { flex: 1 1 auto; min-width: 0; }
.quiz .quiz-options .widget-radio-box label {
  display: flex; align-items: flex-start; height: auto !important; min-height: var(--jp-widgets-radio-item-height, 24px);
  line-height: 1.4 !important; padding: 2px 0; white-space: normal; overflow-wrap: anywhere; cursor: pointer;
}
.quiz .quiz-options .widget-radio-box input {
  flex: none; order: -1; height: 1.4em !important; line-height: 1.4 !important; margin: 0 8px 0 1px; float: none;
}
"""


def _box(html_text: str, color: str | None = None) -> str:
    if not html_text:
        return ""
    style = f"border-left:4px solid {color};padding:2px 10px;margin:4px 0" if color else "margin:4px 0"
    return f'<div style="{style}">{html_text}</div>'


def _button(description: str, css: str, tooltip: str = "", style: str = "") -> W.Button:
    b = W.Button(description=description, tooltip=tooltip or description, button_style=style,
                 layout=W.Layout(width="auto"))
    return b.add_class(css)


class QuestionView:
    """The widgets of one question: prompt, input, buttons, feedback."""

    def __init__(self, question: Question, number: int, progress: Progress,
                 on_answer: Callable[[], None] | None = None):
        self.question = question
        self.number = number
        self.progress = progress
        self.on_answer = on_answer
        self.last_result: Result | None = None
        self.wrong_tries = 0     # wrong answers in this session (a saved wrong answer counts one)
        self.revealed = False    # the right answer is shown (second wrong try or "Show answer")
        tag = question.label + (f" · {question.difficulty}" if question.difficulty else "")
        self.prompt = W.HTML(
            f"<div><b>Question {number}</b> <span style='color:{_NOTE}'>({html.escape(tag)})</span></div>"
            + markdown_to_html(question.prompt)
        ).add_class("quiz-prompt")
        self.feedback = W.HTML("").add_class("quiz-feedback")
        self.solution = W.HTML("").add_class("quiz-solution")
        self.hint_text = W.HTML("").add_class("quiz-hint-text")
        self.hint_button = None
        if question.hint:
            self.hint_button = _button("Hint", "quiz-hint", "Show a hint")
            self.hint_button.on_click(self._toggle_hint)
        self.buttons: list[W.Widget] = []
        self.inputs: list[W.Widget] = self._build_inputs()
        self.reveal_button = _button("Show answer", "quiz-reveal", "Show the right answer and the explanation")
        self.reveal_button.on_click(self.reveal)
        self.reveal_button.layout.display = "none"  # offered after a wrong try
        row = [w for w in self.buttons] + ([self.hint_button] if self.hint_button else [])
        if self.reveals:
            row.append(self.reveal_button)
        self.box = W.VBox(
            [self.prompt, *self.inputs, W.HBox(row), self.hint_text, self.feedback, self.solution],
            layout=W.Layout(border="1px solid #ddd", padding="6px 10px", margin="6px 0"),
        ).add_class("quiz-question").add_class(f"quiz-{question.type.replace('_', '-')}")
        record = progress.get(question.id)
        if record:
            self.restore(record)

    # hooks for subclasses -----------------------------------------------------
    reveals = True  # a wrong answer holds the right one back (flashcards show it on the card)

    def _build_inputs(self) -> list[W.Widget]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, response: Any) -> Result:
        return self.question.check(response)

    def restore(self, record: dict) -> None:
        """Show an answer saved in an earlier session."""
        response = record.get("last_response")
        try:
            self._set_input(response)
            result = self._check(response)
        except (ValueError, TypeError):
            verdict = "right" if record.get("correct") else "wrong"
            self._note(f"Your saved answer ({record.get('attempts', 1)} attempt(s)) was {verdict}.")
            return
        if not result.correct:
            # one wrong try saved; two or more attempts ending wrong: the answer was shown before
            self.wrong_tries = 1
            self.revealed = int(record.get("attempts", 1)) >= 2
        self._show(result, saved=record)

    def _set_input(self, response: Any) -> None:
        pass

    # common behaviour -----------------------------------------------------------
    def _toggle_hint(self, _=None) -> None:
        if self.hint_text.value:
            self.hint_text.value = ""
            self.hint_button.description = "Hint"
        else:
            self.show_hint()

    def show_hint(self) -> None:
        if self.hint_button is None:
            return
        self.hint_text.value = _box("💡 " + markdown_to_html(self.question.hint), "#f0b400")
        self.hint_button.description = "Hide hint"

    def reveal(self, _=None) -> None:
        """Show the right answer, the explanation and the worked solution ("Show answer")."""
        self.revealed = True
        if self.last_result is not None:
            self._show(self.last_result)
        self.reveal_button.layout.display = "none"

    def _note(self, text: str) -> None:
        self.feedback.value = _box(html.escape(text), _NOTE)

    def answer(self, response: Any) -> Result | None:
        """Grade ``response``, save it to the progress file and show the feedback."""
        try:
            result = self._check(response)
        except ValueError as exc:
            self._note(str(exc))
            return None
        self.progress.record(self.question, response, result)
        if not result.correct:
            self.wrong_tries += 1
            if self.wrong_tries >= 2:
                self.revealed = True
        self._show(result)
        if self.on_answer:
            self.on_answer()
        return result

    @property
    def answer_shown(self) -> bool:
        """The right answer is on screen: answered right, or revealed."""
        return self.last_result is not None and (self.last_result.correct or self.revealed)

    def _show(self, result: Result, saved: dict | None = None) -> None:
        self.last_result = result
        prefix = ""
        if saved:
            prefix = (f"<div style='color:{_NOTE}'><i>Your saved answer "
                      f"({int(saved.get('attempts', 1))} attempt(s) so far):</i></div>")
        color = _OK if result.correct else _BAD
        if self.answer_shown:
            self.feedback.value = _box(prefix + markdown_to_html(result.feedback), color)
            self.solution.value = _box(markdown_to_html(result.solution)) if result.solution else ""
            self.reveal_button.layout.display = "none"
            return
        # a wrong try: what was chosen and why it is not it, the hint, another go
        retry = result.retry_feedback or result.feedback
        again = ("Try again" + (" with the hint above" if self.hint_button else "")
                 + ", or click *Show answer*.")
        self.feedback.value = _box(prefix + markdown_to_html(retry + "\n\n" + again), color)
        self.solution.value = ""
        self.reveal_button.layout.display = None
        self.show_hint()


class ChoiceView(QuestionView):
    """Multiple choice and practice problems: radio buttons and a Check button."""

    question: MultipleChoice

    def _build_inputs(self) -> list[W.Widget]:
        q = self.question
        self.order = q.display_order()  # file indices, in the order shown
        self.radio = W.RadioButtons(
            options=[(f"{_LETTERS[pos]}. {q.options[i]}", i) for pos, i in enumerate(self.order)],
            value=None, layout=W.Layout(width="100%"),
        ).add_class("quiz-options")
        self.check_button = _button("Check", "quiz-check", "Check your answer", "primary")
        self.check_button.on_click(self._on_check)
        self.buttons = [self.check_button]
        return [self.radio]

    def _on_check(self, _=None) -> None:
        if self.radio.value is None:
            self._note("Pick an option first.")
            return
        self.answer(self.radio.value)

    def _check(self, response: Any) -> Result:
        return self.question.check(response, order=self.order)

    def _set_input(self, response: Any) -> None:
        self.radio.value = self.question.option_index(response)

    def shown_letter(self, response: Any) -> str:
        """The letter the widget shows for an option (text, file index or file letter)."""
        return _LETTERS[self.order.index(self.question.option_index(response))]


class FlashcardView(QuestionView):
    """A card that flips on click; then the learner marks it known or to review."""

    question: Flashcard
    reveals = False

    def _build_inputs(self) -> list[W.Widget]:
        self.flip_button = _button("Show answer", "quiz-flip", "Flip the card")
        self.flip_button.on_click(self.flip)
        self.knew_button = _button("I knew it", "quiz-knew", "Mark as known", "success")
        self.review_button = _button("Review again", "quiz-review", "Show this card again later", "warning")
        self.knew_button.on_click(lambda _=None: self.answer(True))
        self.review_button.on_click(lambda _=None: self.answer(False))
        self.knew_button.layout.display = "none"
        self.review_button.layout.display = "none"
        self.answer_html = W.HTML("").add_class("quiz-answer")
        self.buttons = [self.flip_button, self.knew_button, self.review_button]
        return [self.answer_html]

    @property
    def flipped(self) -> bool:
        return bool(self.answer_html.value)

    def flip(self, _=None) -> None:
        if self.flipped:
            self.answer_html.value = ""
            self.flip_button.description = "Show answer"
            self.knew_button.layout.display = self.review_button.layout.display = "none"
        else:
            self.answer_html.value = _box(markdown_to_html(self.question.answer), "#3b6fd6")
            self.flip_button.description = "Hide answer"
            self.knew_button.layout.display = self.review_button.layout.display = None

    def _show(self, result: Result, saved: dict | None = None) -> None:
        # the answer itself is on the card: only the verdict goes to the feedback
        self.last_result = result
        prefix = "<i>Saved from an earlier session:</i> " if saved else ""
        self.feedback.value = _box(prefix + markdown_to_html(result.feedback), _OK if result.correct else "#f0b400")


class ChecklistView(QuestionView):
    """An open question: a text area scored against the key concepts."""

    question: Checklist

    def _build_inputs(self) -> list[W.Widget]:
        self.text = W.Textarea(placeholder="Write your answer here, in a few sentences…", rows=5,
                               layout=W.Layout(width="95%")).add_class("quiz-text")
        self.check_button = _button("Check", "quiz-check", "Score your answer", "primary")
        self.check_button.on_click(self._on_check)
        self.buttons = [self.check_button]
        return [self.text]

    def _on_check(self, _=None) -> None:
        if not self.text.value.strip():
            self._note("Write your answer first.")
            return
        self.answer(self.text.value)

    def _set_input(self, response: Any) -> None:
        self.text.value = "" if response is None else str(response)


class NumericView(QuestionView):
    """A number box and a Check button."""

    question: Numeric

    def _build_inputs(self) -> list[W.Widget]:
        q = self.question
        # a Text, not a FloatText: it starts empty (no pre-filled 0) and takes "1,000" or "92.5%"
        self.number_input = W.Text(value="", placeholder="a number", description="Answer:",
                                   layout=W.Layout(width="220px")).add_class("quiz-number")
        self.check_button = _button("Check", "quiz-check", "Check your number", "primary")
        self.check_button.on_click(self._on_check)
        self.buttons = [self.check_button]
        items: list[W.Widget] = [self.number_input]
        if q.unit:
            items.append(W.Label(q.unit).add_class("quiz-unit"))
        widgets = [W.HBox(items)]
        if q.answer is None:
            widgets.append(W.HTML(_box(html.escape(
                "This number comes from your own run of the notebook; run the chapter's cells "
                "before this quiz so it can be checked."), _NOTE)).add_class("quiz-note"))
        return widgets

    def _on_check(self, _=None) -> None:
        if self.question.answer is None:
            self._note("This number comes from your own run of the notebook, and it was not passed to "
                       "the quiz, so it cannot be checked here. Compare with the value printed above.")
            return
        if not str(self.number_input.value).strip():
            self._note("Type a number first.")
            return
        self.answer(self.number_input.value)

    def _set_input(self, response: Any) -> None:
        self.number_input.value = _fmt_number(Numeric.parse(response))


VIEW_TYPES: dict[type, type[QuestionView]] = {
    Practice: ChoiceView,
    MultipleChoice: ChoiceView,
    Flashcard: FlashcardView,
    Checklist: ChecklistView,
    Numeric: NumericView,
}


def view_for(question: Question, number: int, progress: Progress, on_answer=None) -> QuestionView:
    return VIEW_TYPES[type(question)](question, number, progress, on_answer)


class QuizView:
    """A whole quiz: title, score line and one view per question, in ``box``."""

    def __init__(self, quiz: Quiz, progress: Progress):
        self.quiz = quiz
        self.progress = progress
        title = f"<h3 style='margin:4px 0'>Quiz: {html.escape(quiz.title)}</h3>"
        if quiz.description:
            title += markdown_to_html(quiz.description)
        self.title = W.HTML(title).add_class("quiz-title")
        self.score_label = W.HTML("").add_class("quiz-score")
        self.views = [view_for(q, i, progress, self.refresh_score) for i, q in enumerate(quiz.questions, 1)]
        self.style = W.HTML(f"<style>{QUIZ_CSS}</style>").add_class("quiz-style")
        self.box = W.VBox([self.style, self.title, self.score_label, *(v.box for v in self.views)]).add_class("quiz")
        self.refresh_score()

    def __repr__(self) -> str:
        return f"<QuizView {self.quiz.name!r}: {len(self.views)} questions>"

    def __getitem__(self, key: int | str) -> QuestionView:
        if isinstance(key, str):
            for v in self.views:
                if v.question.id == key:
                    return v
            raise KeyError(key)
        return self.views[key]

    def score(self) -> tuple[int, int]:
        right = sum(1 for v in self.views if (self.progress.get(v.question.id) or {}).get("correct") is True)
        return right, len(self.views)

    def refresh_score(self) -> None:
        right, total = self.score()
        answered = sum(1 for v in self.views if self.progress.get(v.question.id))
        self.score_label.value = (f"<b>Score: {right}/{total} correct</b> "
                                  f"<span style='color:{_NOTE}'>({answered} answered)</span>")

    def widget_bundle(self) -> dict:
        """The widget-view part of a display bundle (the caller adds the text fallbacks)."""
        return {"application/vnd.jupyter.widget-view+json": {
            "version_major": 2, "version_minor": 0, "model_id": self.box.model_id}}

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = {"text/plain": self.quiz.to_text(), "text/markdown": self.quiz.to_markdown()}
        bundle.update(self.widget_bundle())
        return bundle
