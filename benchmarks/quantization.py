"""Quantization on CPU, side by side in one run: fp32 vs PyTorch dynamic int8 vs ONNX Runtime fp32/int8,
plus fp16 and bf16 casts — every variant measured the same way by course_lib.evaluate.Benchmark.

    python benchmarks/quantization.py                  # full mode: the full-mode teacher, whole SMS test split
    COURSE_FAST=1 python benchmarks/quantization.py    # fast mode (the fast teacher, 120 test messages)
    python benchmarks/quantization.py --no-casts       # skip fp16/bf16 (slow on most CPUs)
    python benchmarks/quantization.py --sweep          # also the bit-width sweep (validation split, as the notebook)

Prints, for each variant against fp32 (PyTorch): size ratio, batch-1 latency ratio, throughput ratio
at batch 32, spam-F1 change and agreement with fp32's predictions. The machine's load average is
printed with the results: on a shared CPU, timings taken under load are slower and noisier.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd
import torch
from cpu import load_report  # the benchmarks' shared helpers (benchmarks/cpu.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-casts", action="store_true", help="skip the fp16 / bf16 casts")
    parser.add_argument("--sweep", action="store_true", help="also print the fake-quantization bit-width sweep")
    parser.add_argument("--runs", type=int, default=None, help="batch-1 latency runs (default: benchmark's)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from course_lib import config, data, evaluate, onnx_runtime, quantize, train
    from course_lib.studies import quantization

    threads = config.set_threads()
    splits = data.sms_splits()
    test = data.for_mode(splits.test, fast_n=120)
    load_before = os.getloadavg()
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · torch {torch.__version__} · threads {threads} · "
          f"{len(test)} test messages · load average {load_before[0]:.2f} on {os.cpu_count()} cores")

    start = time.perf_counter()
    teacher = train.finetuned_teacher()
    variants = {"fp32 PyTorch": teacher, "int8 PyTorch dynamic": quantize.pytorch_dynamic_int8(teacher)}
    ort_fp32, ort_int8 = onnx_runtime.onnx_variants(teacher, threads=threads)
    variants.update({"fp32 ONNX Runtime": ort_fp32, "int8 ONNX Runtime": ort_int8})
    if not args.no_casts:
        variants.update({"fp16 cast": quantize.cast_classifier(teacher, torch.float16),
                         "bf16 cast": quantize.cast_classifier(teacher, torch.bfloat16)})
    kwargs = {"latency_runs": args.runs} if args.runs else {}
    bench = evaluate.Benchmark.from_frame(test, threads=threads, **kwargs)
    for name, variant in variants.items():
        bench.run(name, variant, progress=False)
        r = bench.row(name)
        print(f"  measured {name:22s} F1 {r['f1']:.4f}  {r['size_mb']:6.1f} MB  b1 {r['latency_ms']:6.2f} ms  "
              f"b32 {r['throughput_b32']:7.1f}/s", flush=True)

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    cols = ["f1", "accuracy", "size_mb", "params_m", "latency_ms", "latency_p95_ms", "throughput_b1",
            "throughput_b8", "throughput_b32", "threads"]
    print("\nBenchmark table")
    print(bench.table[cols].round(4).to_string())
    summary = quantization.int8_summary(bench, "fp32 PyTorch", batch=32)
    print("\nAgainst fp32 PyTorch (size ratio = fp32 MB / variant MB; latency ratio = fp32 b1 ms / variant b1 ms; "
          "throughput ratio = variant / fp32 at batch 32)")
    print(summary.round(3).to_string())

    if args.sweep:
        val = data.for_mode(splits.val, fast_n=100)  # the notebook's sweep: same data, same cache entry
        sweep = quantization.bit_width_sweep(teacher, val["text"], val["label"], name="teacher")
        origin = "from cache" if sweep.attrs["cached"] else f"computed in {sweep.attrs['seconds']:.0f} s"
        print(f"\nBit-width sweep on {len(val)} validation messages (fake quantization of every Linear weight, "
              f"embeddings fp32; {origin})")
        for metric in ("f1", "accuracy"):
            print(f"\n{metric}:")
            print(quantization.sweep_table(sweep, metric=metric).round(4).to_string())
    print("\n" + load_report(start, load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
