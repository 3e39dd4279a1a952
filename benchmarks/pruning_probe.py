"""A first look at course_lib.prune on the fine-tuned teacher: one-shot pruning, side by side in one run.

    python benchmarks/pruning_probe.py                  # full mode: the full-mode teacher, whole SMS test split
    COURSE_FAST=1 python benchmarks/pruning_probe.py    # fast mode (the fast teacher, 300 test messages)
    python benchmarks/pruning_probe.py --fine-tune      # also fine-tune the structured variant (keeps its zeros/shape)

Not the chapter's benchmark (that is benchmarks/pruning.py): a probe that the technique behaves on the real
model. Prints, per variant: spam F1 and its change vs the teacher, parameters (M), encoder parameters (M),
size (MB), encoder sparsity, and the batch-1 latency ratio teacher / variant measured interleaved (rounds
of every variant in turn, median of the per-round ratios), with the CPU's int8/bf16 features and the load.
Then the storage table (dense vs CSR vs bitmask, fp32 / int8) and the masks pitfall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch


def cpu_features() -> str:
    """The CPU's vector / int8 / bf16 features that matter for these kernels (from /proc/cpuinfo)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        flags = set(next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return "unknown (no /proc/cpuinfo)"
    return " ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)


def interleaved_latency(variants: dict, texts: list[str], rounds: int, runs: int) -> dict:
    """Median over rounds of (teacher b1 ms / variant b1 ms), each round timing every variant in turn."""
    from course_lib import evaluate

    per_round = {name: [] for name in variants}
    for _ in range(rounds):
        for name, clf in variants.items():
            per_round[name].append(evaluate.latency_ms(clf, texts, runs=runs, warmup=2)["median_ms"])
    base = per_round["teacher"]
    return {name: {"b1_ms": statistics.median(ms), "speedup": statistics.median(b / v for b, v in zip(base, ms)),
                   "spread": float(np.ptp([b / v for b, v in zip(base, ms)]))} for name, ms in per_round.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fine-tune", action="store_true", help="fine-tune the structured 50 %% + 50 %% variant")
    parser.add_argument("--rounds", type=int, default=None, help="latency rounds (default 5, fast mode 3)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from course_lib import config, data, evaluate, prune, train

    threads = config.set_threads()
    splits = data.sms_splits()
    test = data.for_mode(splits.test, fast_n=300)
    calibration = data.sample(splits.train, config.pick(256, 128), seed=0)["text"].tolist()
    load_before = os.getloadavg()
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · torch {torch.__version__} · threads {threads} · "
          f"{len(test)} test messages · {len(calibration)} calibration messages · CPU features: {cpu_features()} · "
          f"load average {load_before[0]:.2f} on {os.cpu_count()} cores", flush=True)
    start = time.perf_counter()
    teacher = train.finetuned_teacher()

    builders = {
        "magnitude global 50%": lambda: prune.magnitude(teacher, 0.5, "global"),
        "magnitude global 70%": lambda: prune.magnitude(teacher, 0.7, "global"),
        "magnitude layer 50%": lambda: prune.magnitude(teacher, 0.5, "layer"),
        "activation 50% FFN": lambda: prune.activation(teacher, calibration, 0.5),
        "heads 50%": lambda: prune.heads(teacher, calibration, 0.5),
        "redundancy 50% by cost": lambda: prune.redundancy(teacher, calibration, threshold=0.0, ratio=0.5),
        "redundancy rho>=0.9": lambda: prune.redundancy(teacher, calibration, threshold=0.9),
    }
    variants = {"teacher": teacher}
    for name, build in builders.items():
        t0 = time.perf_counter()
        variants[name] = build()
        print(f"  built {name:24s} in {time.perf_counter() - t0:5.1f} s", flush=True)
    variants["activation 50% + heads 50%"] = prune.heads(variants["activation 50% FFN"], calibration, 0.5)
    if args.fine_tune:
        t0 = time.perf_counter()
        train_df = data.for_mode(splits.train, fast_n=800)
        variants["act+heads, fine-tuned"], _ = prune.fine_tune_pruned(
            variants["activation 50% + heads 50%"], train_df, splits.val, epochs=config.pick(2, 1), progress=False)
        print(f"  fine-tuned the structured variant in {time.perf_counter() - t0:.0f} s", flush=True)

    bench = evaluate.Benchmark.from_frame(test, threads=threads)
    encoder_params = lambda clf: int(prune.structure(clf)["parameters"].sum())  # noqa: E731
    base_encoder = encoder_params(teacher)
    rows = []
    for name, clf in variants.items():
        row = bench.run(name, clf, measure_speed=False, progress=False)
        report = next((p for p in reversed(clf.meta.get("pruning", [])) if "logit_change_mean" in p), {})
        rows.append({"variant": name, "f1": row["f1"], "f1_change_pts": 100 * (row["f1"] - bench.row("teacher")["f1"]),
                     "params_m": row["params_m"], "encoder_params_m": encoder_params(clf) / 1e6,
                     "encoder_cut": 1 - encoder_params(clf) / base_encoder, "size_mb": row["size_mb"],
                     "sparsity": prune.sparsity(clf), "merged": sum(report.get("merged", [])) or None,
                     "agree_teacher": bench.agreement("teacher", name)})
    timing = interleaved_latency(variants, test["text"].tolist()[:50], rounds=args.rounds or config.pick(5, 3),
                                 runs=config.pick(30, 15))
    table = pd.DataFrame(rows).set_index("variant")
    table["b1_ms"] = [timing[n]["b1_ms"] for n in table.index]
    table["speedup_b1"] = [timing[n]["speedup"] for n in table.index]
    table["speedup_spread"] = [timing[n]["spread"] for n in table.index]
    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 20)
    print("\nOne-shot pruning of the teacher (speedup_b1 = teacher b1 ms / variant b1 ms, median of interleaved rounds; "
          "spread = max - min of the per-round ratios)")
    print(table.round(4).to_string())

    print("\nStorage of magnitude-pruned teachers (MB; encoder Linear weights in the format, the rest dense fp32)")
    for s in (0.5, 0.7, 0.9):
        sizes = prune.storage_mb(prune.magnitude(teacher, s, "global"))
        sizes.insert(0, "sparsity", s)
        print(sizes.round(2).to_string(index=False))
    pitfall = prune.masks_pitfall(teacher, 0.5)
    print(f"\nMasks pitfall at 50 %: {pitfall['dense_mb']:.1f} MB dense, {pitfall['masks_attached_mb']:.1f} MB with "
          f"weight_orig + weight_mask attached, {pitfall['after_remove_mb']:.1f} MB after prune.remove")
    load_after = os.getloadavg()
    shared = load_before[0] > 0.5 * (os.cpu_count() or 1)
    print(f"\nwall time {time.perf_counter() - start:.0f} s · load average at start {load_before[0]:.2f}, now "
          f"{load_after[0]:.2f} on {os.cpu_count()} cores"
          + (" — the CPU was shared: latency ratios are noisy (see spread)" if shared else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
