"""Pruning on CPU, side by side in one run (chapter 04's performance targets):

1. structured pruning of the teacher (activation: that share of FFN neurons and of heads removed, then one
   recovery epoch on the whole training split: course_lib.studies.pruning.recovered, cached): encoder parameters removed, spam-F1 on the SMS test split
   vs the teacher, and the b1 latency ratio teacher / pruned measured interleaved (rounds of every variant in
   turn, same threads, median of the per-round ratios, p50/p95 of all calls);
2. global magnitude pruning: the highest sparsity of the chapter's sweep within 1 F1 point of the teacher after
   fine-tuning (validation split), its test F1, and its size dense and stored sparse (CSR, bitmask, fp32/int8).

    python benchmarks/pruning.py                 # full mode (the full-mode teacher, whole SMS test split)
    COURSE_FAST=1 python benchmarks/pruning.py   # fast mode (the fast teacher, 300 test messages)
    python benchmarks/pruning.py --ratio 0.45    # another structured ratio (default: the chapter's 0.4; trained once, then cached)

The CPU's int8/bf16 features and the load average are printed next to the ratios: on a shared machine the
latency ratios are noisy (see the spread).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd
from cpu import cpu_features, load_report  # noqa: E402 - the benchmarks' shared CPU facts (benchmarks/cpu.py)


def interleaved_latency(variants: dict, texts: list[str], rounds: int, runs: int) -> pd.DataFrame:
    """b1 latency of every variant, ``rounds`` rounds each timing every variant in turn (``runs`` calls)."""
    from course_lib import evaluate

    medians = {name: [] for name in variants}
    calls = {name: [] for name in variants}
    for _ in range(rounds):
        for name, clf in variants.items():
            lat = evaluate.latency_ms(clf, texts, runs=runs, warmup=2)
            medians[name].append(lat["median_ms"])
            calls[name].append(lat["p95_ms"])
    base = medians["teacher"]
    return pd.DataFrame({name: {"b1_p50_ms": statistics.median(ms), "b1_p95_ms": statistics.median(calls[name]),
                                "speedup_b1": statistics.median(b / v for b, v in zip(base, ms)),
                                "spread": float(np.ptp([b / v for b, v in zip(base, ms)]))}
                         for name, ms in medians.items()}).T


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratio", type=float, default=None,
                        help="share of FFN neurons and heads removed (default: the chapter's target_ratio, 0.4 in full mode)")
    parser.add_argument("--rounds", type=int, default=None, help="latency rounds (default 7, fast mode 3)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from course_lib import config, data, evaluate, layers, prune, train
    from course_lib.studies import pruning as study

    threads = config.set_threads()
    load_before = os.getloadavg()
    test = data.for_mode(data.sms_splits().test, fast_n=300)
    settings = study.plan()
    args.ratio = settings["target_ratio"] if args.ratio is None else args.ratio
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · threads {threads} · {len(test)} test messages · "
          f"CPU features: {cpu_features()} · load average {load_before[0]:.2f} on {os.cpu_count()} cores", flush=True)
    start = time.perf_counter()
    teacher = train.finetuned_teacher()

    t0 = time.perf_counter()
    structured = study.recovered(teacher, args.ratio, settings)
    print(f"structured variant ready in {time.perf_counter() - t0:.0f} s (fine-tuning it took "
          f"{structured.meta.get('fine_tune_seconds', 0):.0f} s, {structured.meta.get('fine_tune_steps')} steps, when it was trained)")
    t0 = time.perf_counter()
    sweep = study.sparsity_sweep(teacher, settings)
    best = study.best_within(sweep, "magnitude_global", tuned=True, max_drop=1.0)
    level = float(best["level"]) if best is not None and best["level"] > 0 else min(settings["tuned_levels"])
    magnitude = study.tuned_variant(teacher, "magnitude_global", level, settings)
    print(f"sweep and magnitude variant ready in {time.perf_counter() - t0:.0f} s "
          f"(the sweep took {sweep.attrs['computed_in']:.0f} s when it was computed)", flush=True)

    variants = {"teacher": teacher, f"structured {args.ratio:.0%} FFN+heads, fine-tuned": structured,
                f"magnitude global {level:.0%}, fine-tuned": magnitude}
    bench = evaluate.Benchmark.from_frame(test, threads=threads)
    rows = []
    base_encoder = layers.encoder_parameters(teacher)
    for name, clf in variants.items():
        row = bench.run(name, clf, measure_speed=False, progress=False)
        rows.append({"variant": name, "f1": row["f1"], "f1_change_pts": 100 * (row["f1"] - bench.row("teacher")["f1"]),
                     "params_m": row["params_m"], "encoder_params_m": layers.encoder_parameters(clf) / 1e6,
                     "encoder_cut": 1 - layers.encoder_parameters(clf) / base_encoder, "dense_mb": row["size_mb"],
                     "zero_share": prune.sparsity(clf)})
    timing = interleaved_latency(variants, test["text"].tolist()[:50], rounds=args.rounds or config.pick(7, 3),
                                 runs=config.pick(30, 10))
    table = pd.DataFrame(rows).set_index("variant").join(timing)
    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 20)
    print("\nSide by side (F1 on the SMS test split; speedup_b1 = teacher b1 ms / variant b1 ms, median of "
          "interleaved rounds; spread = max - min of the per-round ratios)")
    print(table.round(4).to_string())

    s_name = f"structured {args.ratio:.0%} FFN+heads, fine-tuned"
    s = table.loc[s_name]
    print(f"\nStructured: {s['encoder_cut']:.1%} fewer encoder parameters (target >= 40 %), F1 {s['f1']:.4f} vs teacher "
          f"{table.loc['teacher', 'f1']:.4f} ({s['f1_change_pts']:+.2f} points; target within 1), b1 latency "
          f"{s['speedup_b1']:.2f}x the teacher's speed (spread {s['spread']:.2f})")
    sizes = study.storage_mb(magnitude)
    m_name = f"magnitude global {level:.0%}, fine-tuned"
    print(f"\nMagnitude: highest global sparsity within 1 F1 point after fine-tuning on the validation sweep: "
          + (f"{best['sparsity']:.0%} (val F1 drop {best['f1_drop']:+.2f} points)" if best is not None and best["level"] > 0
             else f"none of {settings['tuned_levels']}; showing {level:.0%}")
          + f"; on the test split F1 {table.loc[m_name, 'f1']:.4f} ({table.loc[m_name, 'f1_change_pts']:+.2f} points). Sizes (MB):")
    print(sizes.round(2).to_string(index=False))
    print("\n" + load_report(start, load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
