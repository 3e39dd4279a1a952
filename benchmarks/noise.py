"""Speed ratios on a shared CPU: back-to-back vs interleaved, quiet and beside a CPU burner, in one run.

    python benchmarks/noise.py                  # full mode: the cached fine-tuned teacher if there is one
    COURSE_FAST=1 python benchmarks/noise.py    # fast mode
    python benchmarks/noise.py --burners 1 --threads 1

The teacher / tiny-student batch-1 speed ratio (chapter 02's ``students.TINY``, random weights: speed does not
depend on them) measured four ways: "quiet" (whatever else the machine runs: its load is printed), "burn"
(``--burners`` busy-loop processes beside it the whole time) and "burn starts" (they start halfway through:
after the teacher's back-to-back timing, or after half the interleaved rounds). Each way, the ratio is taken

- back to back: ``evaluate.latency_ms`` of the teacher, then of the student (``--repeats`` times), each
  with its noise check (course_lib.noise: load average, other programs' CPU, p95/p50, reference loop);
- interleaved: ``evaluate.speed_ratio`` (A, B, B, A, ... one call each on the same text; the median of the
  per-round ratios, with their 25-75 % and 5-95 % range).

Under load, fewer threads help: on two shared cores a two-thread op waits for its slower thread (try
``--threads 1``).

Without a cached full-mode teacher it uses the pretrained MiniLM with an untrained head (same shape and speed)
and never trains one. The CPU's int8/bf16 features are printed next to the ratios. One run takes 1-3 minutes
(--budget-s shrinks the runs when a first probe finds a busy machine).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from cpu import cpu_line  # the benchmarks' shared CPU facts (benchmarks/ is on sys.path when run)


def _burn(stop) -> None:
    """A busy loop until ``stop`` is set: one core's worth of someone else's work."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class Burners:
    """``n`` busy-loop processes, started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(self, n: int):
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self.procs = [ctx.Process(target=_burn, args=(self._stop,), daemon=True) for _ in range(n)]

    def start(self) -> None:
        for p in self.procs:
            p.start()
        time.sleep(1.0)  # spawned interpreters need a moment before they burn

    def stop(self) -> None:
        self._stop.set()
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def measure(teacher, student, texts, args, burn_at: str | None) -> dict:
    """Back-to-back and interleaved ratios; ``burn_at``: None (no burner), "start" or "half"."""
    from course_lib import evaluate

    burners = Burners(args.burners) if burn_at else None
    out = {"load_start": load()}
    try:
        if burn_at == "start":
            burners.start()
        b2b, checks = [], []
        for rep in range(args.repeats):
            t = evaluate.latency_ms(teacher, texts, runs=args.runs, warmup=3, threads=args.threads)
            if burn_at == "half" and rep == 0:
                burners.start()  # other work begins between the two timings
            s = evaluate.latency_ms(student, texts, runs=args.runs, warmup=3, threads=args.threads)
            b2b.append(t["median_ms"] / s["median_ms"])
            checks += [f"teacher {t['median_ms']:.1f} ms ({t['noise']})", f"student {s['median_ms']:.2f} ms ({s['noise']})"]
        if burn_at == "half":
            burners.stop()
            burners = Burners(args.burners)
        half = args.rounds // 2
        if burn_at == "half":  # interleaved: the first half quiet, the second half burning
            first = evaluate.speed_ratio(teacher, student, texts, rounds=half, runs=args.block, threads=args.threads)
            burners.start()
            second = evaluate.speed_ratio(teacher, student, texts, rounds=args.rounds - half, runs=args.block,
                                          threads=args.threads)
            ratios = first["ratios"] + second["ratios"]
            inter = {**second, "ratios": ratios, "rounds": len(ratios), "speedup": statistics.median(ratios),
                     "noise": f"first half: {first['noise']}; second half: {second['noise']}"}
            q = statistics.quantiles(ratios, n=20)
            inter.update({"low": statistics.quantiles(ratios, n=4)[0], "high": statistics.quantiles(ratios, n=4)[2],
                          "p5": q[0], "p95": q[-1]})
        else:
            inter = evaluate.speed_ratio(teacher, student, texts, rounds=args.rounds, runs=args.block, threads=args.threads)
    finally:
        if burners:
            burners.stop()
    out.update({"b2b": b2b, "checks": checks, "inter": inter, "load_end": load()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burners", type=int, default=2, help="busy-loop processes beside the timing (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default config.num_threads())")
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back repetitions (default 3)")
    parser.add_argument("--runs", type=int, default=None, help="calls per back-to-back latency (default 20, fast 15)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 16, fast 10)")
    parser.add_argument("--block", type=int, default=None, help="texts per interleaved round, each timed once per model (default 4, fast 3)")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="fewer runs and rounds when a first probe says the defaults would take longer (default 150 s)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from course_lib import config, data, models, noise, students, train

    args.threads = config.set_threads(args.threads)
    args.runs = args.runs or config.pick(20, 15)
    args.rounds = args.rounds or config.pick(16, 10)
    args.block = args.block or config.pick(4, 3)
    start = time.perf_counter()
    with noise.watch(args.threads) as w:
        time.sleep(2.0)
    before = w.check()
    others = (f"other programs used {before.other_cores:.2f} cores over 2 s before the run"
              if before.other_cores is not None else "other programs' CPU use unknown (no psutil)")
    print(f"mode: {'fast' if config.fast_mode() else 'full'} · threads {args.threads} · {os.cpu_count()} cores · "
          f"load average {load()} · {others}")
    print("NOTE: this machine is shared (other work runs beside this benchmark), so 'quiet' below means no burner "
          "of ours, not an idle CPU: read the load averages and noise checks next to each figure.")
    print(cpu_line(), flush=True)

    key = models.cache_key(kind="teacher", **train.teacher_settings())
    if models.is_cached(key):
        teacher, which = train.finetuned_teacher(progress=False), "the cached fine-tuned teacher"
    else:
        teacher, which = models.load_teacher(seed=0), ("the pretrained MiniLM with an untrained head (no cached "
                                                       "fine-tuned teacher in this mode; same shape and speed)")
    student = students.small_bert(**students.TINY, seed=0)
    for m in (teacher, student):
        m.model.eval()
    texts = data.sms_splits().test["text"].tolist()[:100]
    from course_lib import evaluate

    probe_ms = sum(evaluate.latency_ms(m, texts, runs=3, warmup=1, threads=args.threads)["median_ms"]
                   for m in (teacher, student))
    calls = args.repeats * args.runs + args.rounds * args.block  # teacher+student calls per scenario
    expected_s = probe_ms / 1000 * calls * 9  # three scenarios; burning, 2 threads ran 2-4x slower on a busy machine
    if expected_s > args.budget_s:
        f = (args.budget_s / expected_s) ** 0.5
        args.runs, args.rounds = max(5, int(args.runs * f)), max(6, int(args.rounds * f))
        print(f"a first probe took {probe_ms:.0f} ms per teacher+student call pair (a busy machine): "
              f"{args.runs} calls per latency and {args.rounds} interleaved rounds, to stay near --budget-s "
              f"{args.budget_s:.0f} s")
    print(f"teacher: {which}, {teacher.num_parameters() / 1e6:.1f} M parameters · student: students.TINY "
          f"{student.num_parameters() / 1e6:.2f} M · {len(texts)} test messages cycled at batch 1\n", flush=True)

    scenarios = [("quiet", None), (f"burn ({args.burners} busy loops)", "start"),
                 (f"burn starts halfway ({args.burners})", "half")]
    results = {}
    for label, burn_at in scenarios:
        results[label] = r = measure(teacher, student, texts, args, burn_at)
        i = r["inter"]
        print(f"== {label}: load average {r['load_start']} -> {r['load_end']}")
        print(f"   back to back ({args.repeats} x {args.runs} calls each): teacher/student "
              + ", ".join(f"{x:.2f}" for x in r["b2b"])
              + f"  (spread {min(r['b2b']):.2f}-{max(r['b2b']):.2f})")
        for c in r["checks"]:
            print(f"      {c}")
        print(f"   interleaved ({i['rounds']} rounds x {args.block} texts, teacher and student alternating): {i['speedup']:.2f} "
              f"(25-75 % {i['low']:.2f}-{i['high']:.2f}, 5-95 % {i['p5']:.2f}-{i['p95']:.2f}; "
              f"{'reliable' if i.get('reliable', True) else 'wide'}) · {i['noise']}", flush=True)

    print("\nSummary: teacher/student batch-1 speed ratio (how many times faster the student is)")
    print(f"{'scenario':32s} {'back-to-back median':>20s} {'b2b min-max':>12s} {'interleaved':>12s} {'25-75 %':>12s}  load")
    for label, r in results.items():
        i = r["inter"]
        print(f"{label:32s} {statistics.median(r['b2b']):20.2f} {min(r['b2b']):5.2f}-{max(r['b2b']):<6.2f} "
              f"{i['speedup']:12.2f} {i['low']:5.2f}-{i['high']:<6.2f}  {r['load_start']} -> {r['load_end']}")
    print("\n" + cpu_line())
    print(f"wall time {time.perf_counter() - start:.0f} s · load average now {load()} on {os.cpu_count()} cores "
          "(shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
