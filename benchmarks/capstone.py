"""Chapter 07: the shipped file (int8 ONNX + trimmed tokenizer, served without PyTorch) vs the fine-tuned teacher,
side by side in one run, on the SMS test split.

    python benchmarks/capstone.py                  # full mode: the cached full-mode teacher and chain
    COURSE_FAST=1 python benchmarks/capstone.py    # fast mode (small models, 200 test messages)
    python benchmarks/capstone.py --threads 1 2    # b1 latency at each thread count (default: 1 and 2)

Prints the issue's three targets (>= 50x smaller on disk, >= 10x lower b1 latency, spam-F1 loss <= 1 point),
the YouTube F1 of both, the peak memory of both while serving (each in a fresh process: the shipped file with
onnxruntime + tokenizers only, the teacher with PyTorch + transformers), and the CPU's int8 / bf16 features.
Latency is measured interleaved: every round times the teacher and the shipped file in turn, with the same
thread count, and the median of the rounds' medians is reported. On a shared CPU the milliseconds move with
the load; the ratios, measured side by side, are what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from cpu import cpu_features  # noqa: E402 - the benchmarks' shared CPU facts (benchmarks/cpu.py)


def interleaved(variants: dict, texts: list[str], threads: int, rounds: int, runs: int) -> dict:
    """Median b1 latency (ms) of every variant: ``rounds`` rounds, each timing every variant in turn."""
    from course_lib import evaluate

    medians = {name: [] for name in variants}
    for _ in range(rounds):
        for name, model in variants.items():
            lat = evaluate.latency_ms(model, texts, runs=runs, warmup=3, threads=threads)
            medians[name].append(lat["median_ms"])
    return {name: statistics.median(v) for name, v in medians.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for b1 latency")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, fast 2)")
    parser.add_argument("--runs", type=int, default=None, help="calls per round (default 40, fast 10)")
    parser.add_argument("--recipe", default=None,
                        help="start from this capstone_students recipe at seed 0 (cached) instead of the best one, "
                             "e.g. 'no KD + emb init'; 'ch02' = chapter 02's tiny KD student")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from course_lib import config, evaluate, ship, shipped
    from course_lib.studies import capstone
    from course_lib.studies import distillation as ch02

    rounds = args.rounds or config.pick(5, 2)
    runs = args.runs or config.pick(40, 10)
    sets = ch02.eval_sets()
    test, youtube = sets["sms"], sets["youtube"]
    load = os.getloadavg()
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · {len(test)} SMS test messages · {len(youtube)} YouTube "
          f"comments · load average {load[0]:.2f} on {os.cpu_count()} cores (shared machine: timings are noisy)")
    print(f"CPU int8 / bf16 features: {cpu_features()}")
    start = time.perf_counter()
    first = None
    if args.recipe == "ch02":
        first = ch02.train_student(ch02.Recipe("tiny", "kd", **capstone.KD), progress=False)
        print("student: chapter 02's tiny KD student (seed 0)")
    elif args.recipe:
        from course_lib.studies import capstone_students

        first = capstone_students.train_recipe(args.recipe, seed=0, progress=False)
        print(f"student: capstone_students recipe {args.recipe!r}, seed 0")
    else:
        print(f"student: {capstone.student_source()}")
    chain = capstone.chain(progress=False, start=first)
    teacher, path = chain["steps"]["teacher"], chain["path"]
    print(f"chain ready in {time.perf_counter() - start:.0f} s: {path.name}")

    y, y_yt = test["label"].to_numpy(), youtube["label"].to_numpy()
    served = shipped.load(path, threads=1)
    f1 = {}
    for name, model in (("teacher", teacher), ("shipped", served)):
        f1[name] = evaluate.quality(y, model.predict_logits(test["text"].tolist()).argmax(axis=1))["f1"]
        f1[f"{name} youtube"] = evaluate.quality(y_yt, model.predict_logits(youtube["text"].tolist()).argmax(axis=1))["f1"]
    teacher_mb = teacher.size_mb() + len(ship.tokenizer_json(teacher.tokenizer).encode()) / 1e6
    shipped_mb = served.size_mb()

    texts = test["text"].tolist()[:100]
    latency = {}
    for threads in args.threads:
        variants = {"teacher": teacher, "shipped": shipped.load(path, threads=threads)}
        latency[threads] = interleaved(variants, texts, threads, rounds, runs)

    serving = capstone.serving(path, threads=1)

    print()
    print(f"size on disk (model + tokenizer): teacher {teacher_mb:.2f} MB, shipped {shipped_mb:.3f} MB -> "
          f"{teacher_mb / shipped_mb:.1f}x smaller (target >= 50x: {'met' if teacher_mb / shipped_mb >= 50 else 'NOT met'})")
    for threads, lat in latency.items():
        ratio = lat["teacher"] / lat["shipped"]
        print(f"b1 latency, {threads} thread(s), interleaved {rounds}x{runs}: teacher {lat['teacher']:.2f} ms, shipped "
              f"{lat['shipped']:.3f} ms -> {ratio:.1f}x lower (target >= 10x: {'met' if ratio >= 10 else 'NOT met'})")
    loss = 100 * (f1["teacher"] - f1["shipped"])
    print(f"spam F1 (SMS test): teacher {f1['teacher']:.4f}, shipped {f1['shipped']:.4f} -> loss {loss:+.2f} points "
          f"(target <= 1: {'met' if loss <= 1 else 'NOT met'})")
    print(f"YouTube F1 (shift): teacher {f1['teacher youtube']:.4f}, shipped {f1['shipped youtube']:.4f}")
    for name, r in serving.iterrows():
        print(f"serving {name}: load {r['load_ms']:.0f} ms, process peak {r['peak_mb']:.0f} MB "
              f"(+{r['serving_mb']:.0f} MB for the model), torch imported: {r['torch_imported']}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
