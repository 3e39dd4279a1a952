"""Statistics every chapter shares: the spread of a result over seeds (:func:`summarize`,
:func:`describe_effect`) and the messages on which two models disagree (:func:`flip_report`).

A *study* here is a frame with one row per (model, setting, seed) and a column per metric, as
:func:`course_lib.studies.distillation.seed_study` returns it; a *benchmark* is an
:class:`course_lib.evaluate.Benchmark` that kept each model's predictions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def summarize(study: pd.DataFrame, metrics: Sequence[str] = ("sms_f1", "sms_acc", "youtube_f1")) -> pd.DataFrame:
    """Mean ± standard deviation over seeds, one row per (setting, model), as ``"0.966 ± 0.004"`` strings,
    plus the number of seeds ``n``. Numeric means and stds are in ``.attrs["mean"]`` / ``.attrs["std"]``."""
    groups = study.groupby(["setting", "model"], sort=False)
    mean = groups[list(metrics)].mean()
    std = groups[list(metrics)].std(ddof=1).fillna(0.0)
    table = pd.DataFrame(index=mean.index)
    for m in metrics:
        table[m] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(mean[m], std[m])]
    table["n"] = groups.size()
    table.attrs["mean"] = mean
    table.attrs["std"] = std
    return table


def describe_effect(study: pd.DataFrame, setting: str, metric: str, baseline: str, variant: str) -> str:
    """One sentence on ``variant`` − ``baseline`` for ``metric`` in ``setting``, from the numbers in ``study``:
    the mean difference over seeds, its spread, and whether it is larger than the seed-to-seed noise."""
    part = study[study["setting"] == setting]
    a = part[part["model"] == baseline].set_index("seed")[metric]
    b = part[part["model"] == variant].set_index("seed")[metric]
    if a.empty or b.empty:
        raise KeyError(f"no rows for {baseline!r} and {variant!r} in setting {setting!r}.")
    if len(a) == 1:  # a single model (the teacher): compare every seed of the other with it
        a = pd.Series(float(a.iloc[0]), index=b.index)
    common = a.index.intersection(b.index)
    diff = (b[common] - a[common]).to_numpy()
    mean = float(diff.mean())
    spread = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    noise = float(np.nanmax([a.std(ddof=1) if len(a) > 1 else np.nan, b.std(ddof=1) if len(b) > 1 else np.nan, 0.0]))
    wins = int((diff > 0).sum())
    same_sign = len(diff) > 1 and (wins == len(diff) or wins == 0) and not np.any(diff == 0)
    if len(diff) > 1 and abs(mean) > 2 * max(spread, 1e-9):
        verdict = "a consistent difference (larger than twice its seed-to-seed spread)"
    elif same_sign and abs(mean) > spread:
        verdict = "the same direction for every seed, though its size varies a lot from seed to seed"
    elif len(diff) > 1 and abs(mean) <= max(noise, spread):
        verdict = "within the seed-to-seed noise: no measurable effect"
    else:
        verdict = "a difference, but not much larger than the noise: more seeds would be needed to be sure"
    return (f"{setting}, {metric.replace('_', ' ')}: {variant} − {baseline} = {mean:+.3f}"
            + (f" ± {spread:.3f}" if len(diff) > 1 else "")
            + f" over {len(diff)} seed(s) ({wins}/{len(diff)} better) → {verdict}.")


def flip_report(bench, baseline: str, variant: str, train_texts: Sequence[str], tokenizer) -> tuple[pd.DataFrame, dict]:
    """The messages on which two benchmarked models disagree, with facts that help explain why.

    Columns: ``text``, ``label`` (true), ``right`` (which model got it right), ``P(spam)`` of each,
    ``teacher margin`` (|P(spam) − 0.5| of the baseline: small = the baseline was unsure),
    ``tokens`` and ``rare pieces`` (word pieces seen fewer than 3 times in ``train_texts``).
    The summary dict compares flipped messages with all messages: median baseline margin and
    rare-piece share.
    """
    counts: dict[int, int] = {}
    for ids in tokenizer(list(train_texts), truncation=True, max_length=128)["input_ids"]:
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    special = set(tokenizer.all_special_ids)

    def facts(text):
        ids = [i for i in tokenizer(text, truncation=True, max_length=128)["input_ids"] if i not in special]
        rare = sum(1 for i in ids if counts.get(i, 0) < 3)
        return len(ids), rare

    a, b = bench.predictions[baseline], bench.predictions[variant]
    labels = np.asarray(bench.labels)
    margin_all = np.abs(a.spam_prob - 0.5)
    changed = np.flatnonzero(a.labels != b.labels)
    rows = []
    for i in changed:
        n_tok, rare = facts(bench.texts[i])
        right = baseline if a.labels[i] == labels[i] else variant
        rows.append({"text": bench.texts[i], "label": "spam" if labels[i] else "ham", "right": right,
                     f"P(spam) {baseline}": float(a.spam_prob[i]), f"P(spam) {variant}": float(b.spam_prob[i]),
                     "teacher margin": float(margin_all[i]), "tokens": n_tok, "rare pieces": rare})
    table = pd.DataFrame(rows)
    rare_all = np.array([facts(t)[1] > 0 for t in bench.texts])
    summary = {
        "flips": int(len(changed)),
        "baseline_right": int(sum(r["right"] == baseline for r in rows)),
        "variant_right": int(sum(r["right"] == variant for r in rows)),
        "median_margin_flipped": float(np.median(margin_all[changed])) if len(changed) else float("nan"),
        "median_margin_all": float(np.median(margin_all)),
        "share_rare_flipped": float(np.mean(rare_all[changed])) if len(changed) else float("nan"),
        "share_rare_all": float(np.mean(rare_all)),
    }
    return table, summary
