"""Chapter 02's distillation experiments, side by side (mean ± std over seeds).

    python benchmarks/distillation.py            # full mode (trains what the cache lacks)
    COURSE_FAST=1 python benchmarks/distillation.py

Trains (or loads from the cache) exactly what the notebook uses, so running this first
makes the notebook load instead of train. Prints: the in-distribution and low-label
results on the SMS test split, the distribution-shift result on YouTube comments, the
temperature sweep, and the time each student took to train.
"""

from __future__ import annotations

import time

import pandas as pd

from course_lib import config, stats
from course_lib.studies import distillation


def main() -> None:
    start = time.perf_counter()
    plan = distillation.chapter_plan()
    seeds = plan["seeds"]
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · seeds {list(seeds)} · threads {config.num_threads()}", flush=True)
    study = pd.concat([
        distillation.seed_study(plan["in_distribution"], seeds),
        distillation.seed_study([plan["from_teacher"]], (0,), include_teacher=False),
        distillation.seed_study(plan["low_label"], seeds),
    ], ignore_index=True)
    sweep = plan["sweep"]
    table = distillation.temperature_sweep(sweep["temperatures"], alpha=sweep["alpha"], labelled=sweep["labelled"],
                                           seeds=sweep["seeds"])
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 60)
    print("\n== SMS test split and YouTube comments (mean ± std over seeds) ==")
    print(stats.summarize(study, ("sms_f1", "sms_acc", "youtube_f1", "youtube_acc")).to_string())
    print("\n== temperature sweep (low-label setting) ==")
    print(table[["temperature", "alpha", "seed", "sms_f1", "youtube_f1", "train_seconds"]].to_string(index=False))
    print("\n== per run ==")
    print(study.round(4).to_string(index=False))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    import argparse

    # no options: --help prints what the script measures
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
