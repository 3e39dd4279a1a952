"""Chapter 06 in one run: for every model of the earlier chapters, its spam-F1 on the SMS test split with
the 95 % bootstrap interval, its F1 on YouTube comments (distribution shift), its F1 with the spam perturbed
by each kind at strength 0.5, its greedy-attack success rate and its expected calibration error.

    python benchmarks/stress.py                 # full mode (models of chapters 01-03 from the cache)
    COURSE_FAST=1 python benchmarks/stress.py   # fast mode

Uses the chapter's cached studies (course_lib.studies.stress): a second run only reads the cache. No
timings are printed here (see benchmarks/quantization.py and the notebook's operations section).
"""

from __future__ import annotations

import os
import time

import pandas as pd


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from course_lib import config, stats
    from course_lib.studies import stress as study

    config.set_threads()
    start = time.perf_counter()
    zoo = study.chapter_models(progress=False)
    for note in zoo.notes:
        print("note:", note)
    sets = study.eval_sets()
    test, youtube = sets["sms"], sets["youtube"]
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · {len(test)} SMS test messages · "
          f"{len(youtube)} YouTube comments · {config.machine_load()}")
    sweep = study.perturbation_sweep(zoo, progress=True)
    half = sweep["table"][sweep["table"]["strength"] == 0.5].pivot(index="model", columns="kind", values="f1")
    attack = study.attack_study(zoo, progress=True)["table"]
    calibration = study.calibration_table(zoo)
    rows = []
    for name in zoo.models:
        pred = study.probs(zoo, name, test["text"].tolist()).argmax(1)
        ci = stats.bootstrap_ci(test["label"], pred, "f1")
        yt = stats.score(youtube["label"], study.probs(zoo, name, youtube["text"].tolist()).argmax(1), "f1")
        rows.append({"model": name, "f1": ci["value"], "f1 95% low": ci["low"], "f1 95% high": ci["high"],
                     "youtube f1": yt, **{f"f1 {k}@0.5": half.loc[name, k] for k in half.columns},
                     "attack success": attack.loc[name, "success_rate"], "ece": calibration.loc[name, "ece"],
                     "ece (T-scaled)": calibration.loc[name, "ece_scaled"]})
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(pd.DataFrame(rows).set_index("model").round(3).T.to_string())
    print(f"\n{time.perf_counter() - start:.0f} s in all (cached studies are read, not recomputed)")


if __name__ == "__main__":
    import argparse

    # no options: --help prints what the script measures
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
