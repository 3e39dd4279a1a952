"""The runner every exercise checker shares (MIT EfficientML-lab style).

A checker calls the learner's function on a few cases, stops at the first case whose output is
wrong and says why in one sentence, and returns ``"passed"`` when every case matches the
reference solution. The runner does the parts every checker repeats:

- a stub that still raises ``NotImplementedError`` -> "not written yet: replace the
  `raise NotImplementedError` with ...";
- any other exception -> "your function raised <type>: <message>" (never re-raised);
- ``inspect(case, output)`` -> a sentence when the output is malformed or wrong, else None;
- :func:`name_mistake`: when the outputs differ from the reference, the first mistake of the
  checker's catalogue (known wrong versions of the function) that reproduces them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

PASSED = "passed"


def not_written(what: str) -> str:
    """The message for a stub that still raises ``NotImplementedError``; ``what`` e.g. "your loss"."""
    return f"not written yet: replace the `raise NotImplementedError` with {what}."


def run_cases(fn: Callable, cases: Sequence, call: Callable[[Callable, Any], Any], what: str,
              inspect: Callable[[Any, Any], str | None] | None = None,
              where: Callable[[Any], str] = lambda case: "") -> list | str:
    """Call ``fn`` on every case with ``call(fn, case)``; return the list of outputs, or the sentence
    that ends the check: the stub is not written yet, ``fn`` raised, or ``inspect(case, output)``
    found a problem. ``where(case)`` prefixes the "raised" sentence (e.g. ``"On a 4-bit matrix, "``).
    """
    outputs = []
    for case in cases:
        try:
            out = call(fn, case)
        except NotImplementedError:
            return not_written(what)
        except Exception as exc:  # noqa: BLE001 - any learner error is reported, not raised
            return f"{where(case)}your function raised {type(exc).__name__}: {exc}"
        problem = inspect(case, out) if inspect is not None else None
        if problem:
            return problem
        outputs.append(out)
    return outputs


def name_mistake(got: Sequence, cases: Sequence, mistakes: Sequence[tuple[str, Callable]],
                 close: Callable[[Sequence, Sequence], bool]) -> str | None:
    """``"not yet: <description>."`` for the first ``(description, wrong_function)`` of ``mistakes``
    whose outputs on ``cases`` (called as ``wrong_function(*case)``) are ``close`` to ``got``; None if
    no known mistake explains them."""
    for description, variant in mistakes:
        if close(got, [variant(*case) for case in cases]):
            return f"not yet: {description}."
    return None
