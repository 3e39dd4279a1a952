"""Low-rank factorization of the teacher's encoder Linear layers, side by side in one run: plain SVD vs whitened.

    python benchmarks/lowrank.py                 # full mode: the full-mode teacher, the chapter's sweep (cached)
    COURSE_FAST=1 python benchmarks/lowrank.py   # fast mode

Uses (or computes once and caches) exactly the chapter's study, so running it first makes notebook 05 load instead
of compute. Prints, per method, the largest parameter cut of the encoder's Linear layers whose validation F1 stays
within 1 point of the teacher after fine-tuning (one epoch on the training split), then the batch-1 latency and size ratios vs the teacher on
the test split, measured interleaved (teacher, svd, whitened, teacher, ...) with the thread count and the CPU's
int8/bf16 features printed next to them. On a shared CPU the timings are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from cpu import cpu_line  # noqa: E402 - the benchmarks' shared CPU facts (benchmarks/cpu.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 5, fast 2)")
    parser.add_argument("--runs", type=int, default=None, help="batch-1 calls per round (default 40, fast 10)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import pandas as pd

    from course_lib import config, data, evaluate, train
    from course_lib.studies import lowrank as study

    threads = config.set_threads()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    test = data.for_mode(data.sms_splits().test, fast_n=120)
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · threads {threads} · {len(test)} test messages · "
          f"load average {load_before:.2f} on {os.cpu_count()} cores")
    print(cpu_line(), flush=True)
    teacher = train.finetuned_teacher()
    plan = study.plan()
    sweep = study.rank_sweep(teacher, plan)
    info = sweep.attrs
    origin = "from the cache" if info["cached"] else f"computed in {info['seconds']:.0f} s"
    print(f"sweep: {len(sweep) - 1} settings, {origin}; "
          f"validation {info['val_n']} messages ({info['val_spam']} spam), teacher F1 {info['teacher_f1']:.4f}")
    best = study.largest_cut(sweep, plan["max_drop"])
    print(f"\nLargest cut of the encoder's Linear parameters ({info['linear_params_m']:.2f} M) within "
          f"{plan['max_drop']:g} F1 point after fine-tuning ({plan['finetune']['train_n'] or 'all training'} messages, "
          f"{plan['finetune']['epochs']} epoch; tried ranks {plan['finetune']['ranks']}):")
    print(best.drop(columns=[c for c in ("finetuned", "group", "params_m") if c in best.columns]).round(4).to_string())

    chosen = study.chosen_models(teacher, sweep, plan)
    variants = {"teacher": teacher, **{f"{m} r{c['rank']}": c["clf"] for m, c in chosen.items()}}
    bench = evaluate.Benchmark.from_frame(test, threads=threads)
    for name, v in variants.items():
        bench.run(name, v, measure_speed=False, progress=False)
    rounds = args.rounds or config.pick(5, 2)
    runs = args.runs or config.pick(40, 10)
    times = {name: [] for name in variants}
    texts = bench.latency_texts
    for _ in range(rounds):  # interleaved: every model sees the same machine load
        for name, v in variants.items():
            times[name].append(evaluate.latency_ms(v, texts, runs=runs, warmup=3)["median_ms"])
    rows = []
    base_ms, base_mb = statistics.median(times["teacher"]), teacher.size_mb()
    for name, v in variants.items():
        r = bench.row(name)
        ms = statistics.median(times[name])
        rows.append({"model": name, "test F1": r["f1"], "params (M)": r["params_m"], "size (MB)": r["size_mb"],
                     "b1 latency (ms)": ms, "x smaller": base_mb / r["size_mb"], "x faster (b1)": base_ms / ms,
                     "within 1 point (val)": "-" if name == "teacher" else bool(chosen[name.split()[0]]["within"])})
    pd.set_option("display.width", 200)
    print(f"\nSide by side (b1 latency: median of {rounds} interleaved rounds of {runs} calls, {threads} threads):")
    print(pd.DataFrame(rows).set_index("model").round(3).to_string())
    print("\n" + cpu_line())
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"wall time {time.perf_counter() - start:.0f} s · load average at start {load_before:.2f}, now {load_after:.2f} "
          f"on {os.cpu_count()} cores" + (" — the CPU was shared: timings are pessimistic and noisy"
                                           if load_before > 0.5 * (os.cpu_count() or 1) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
