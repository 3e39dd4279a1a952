"""Benchmark the fine-tuned teacher against the TF-IDF baseline, side by side in one run.

    python benchmarks/baseline.py            # full mode: the whole SMS test split (1,115 messages)
    COURSE_FAST=1 python benchmarks/baseline.py

Prints quality (accuracy, spam precision/recall/F1), batch-1 latency (median, p95 in ms),
throughput (messages/s) at batch 1/8/32, size (MB) and parameters, then the ratios.
The teacher is loaded from the cache (or trained once, ~4 min on 2 cores).
"""

from __future__ import annotations

import pandas as pd

from course_lib import baselines, config, data, evaluate, train


def main() -> None:
    threads = config.set_threads()
    splits = data.sms_splits()
    test = data.for_mode(splits.test, 300)
    teacher = train.finetuned_teacher()
    bench = evaluate.Benchmark.from_frame(test)
    bench.run("teacher", teacher)
    bench.run("TF-IDF + LR", baselines.tfidf_logreg(splits.train))
    pd.set_option("display.width", 200)
    print(f"mode: {'fast' if config.fast_mode() else 'full'} | test messages: {len(test)} | torch threads: {threads}")
    if "train_seconds" in teacher.meta:
        print(f"teacher fine-tuning time when it was trained: {teacher.meta['train_seconds']:.0f} s "
              f"({teacher.meta.get('threads', '?')} threads)")
    print(bench.table.round(4).T.to_string())
    table = bench.compare("teacher", "TF-IDF + LR")
    print()
    print(table.round(4).to_string())
    print(f"verdict for TF-IDF vs teacher: {table.attrs['verdict']} ({table.attrs['reason']})")


if __name__ == "__main__":
    import argparse

    # no options: --help prints what the script measures
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
