"""course_lib.noise and the noise checks of the benchmark: a timing on a busy machine is flagged, a clean one
is not, verdicts from a noisy speed say so, and interleaved ratios come out as the models' true ratio.

Every source of noise is injected (load average, CPU counters, reference loop), so these tests do not
depend on how busy the shared test machine is; only the CPU-burner test reads the real counters."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from course_lib import evaluate, noise


def quiet_sources(load=0.2, other_cores=0.0, reference=(1.0, 1.0)):
    """Injected sources for noise.watch: a fixed load average, CPU counters in which other programs use
    ``other_cores`` cores over the (fake, 1 s) block, and a reference loop timed ``reference`` ms."""
    clock = iter([0.0, 1.0] * 1000)
    cpu = iter([(10.0, 5.0), (10.0 + 1.0 + other_cores, 6.0)] * 1000)
    ref = iter(list(reference) * 1000)
    return {"load": lambda: load, "cpu": lambda: next(cpu), "reference": lambda: next(ref),
            "clock": lambda: next(clock)}


def check(p50=10.0, p95=12.0, threads=2, cores=2, **kw):
    with noise.Watch(threads, cores=cores, **quiet_sources(**kw)) as w:
        pass
    return w.check(p50, p95)


def test_clean_measurement_is_not_flagged():
    c = check()
    assert not c.noisy and c.label == "ok" and c.other_cores == pytest.approx(0.0)
    assert "clean" in c.note()


@pytest.mark.parametrize("kw, phrase", [
    ({"load": 3.4}, "load average 3.4 on 2 cores"),
    ({"other_cores": 1.2}, "other programs used 1.2 of 2 cores"),
    ({"p95": 31.0}, "p95/p50 3.1"),
    ({"reference": (1.0, 2.0)}, "reference loop 2.0x slower"),
])
def test_each_sign_of_noise_is_flagged_and_named(kw, phrase):
    c = check(**kw)
    assert c.noisy and phrase in c.label, c.label
    assert "rerun" in c.note() and "COURSE_THREADS=1" in c.note()


def test_other_programs_count_against_the_free_cores():
    # one thread on two cores leaves a core free: one other program is fine, two are not
    assert not check(threads=1, other_cores=1.0).noisy
    assert check(threads=1, other_cores=1.8).noisy
    assert check(threads=4, cores=2).noisy  # more threads than cores


def _burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_cpu_burner_beside_the_timing_is_flagged():
    """Real counters (no injected CPU source): two busy-loop processes run during the block."""
    ctx = multiprocessing.get_context("spawn")
    burners = [ctx.Process(target=_burn, args=(3.0,)) for _ in range(2)]
    for p in burners:
        p.start()
    try:
        time.sleep(0.8)  # let them start (spawn imports Python)
        with noise.watch(2, cores=2, load=lambda: None, reference=None) as w:
            time.sleep(0.7)  # this process idles: all the busy CPU is someone else's
        c = w.check()
    finally:
        for p in burners:
            p.join()
    assert c.other_cores is not None and c.other_cores > 1.0, c.other_cores
    assert c.noisy and "other programs" in c.label


class FakeClock:
    """Stands in for time.perf_counter (see the ``clock`` fixture): moves only when a fake model runs."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


class _Sleeper:
    """A fake variant: each call takes ``ms`` milliseconds per text (on the fake clock, or really sleeping
    without one); it calls a text with "win" spam."""

    def __init__(self, ms, clock=None):
        self.ms, self.clock = ms, clock

    def predict_logits(self, texts, batch_size=1):
        if self.clock is not None:
            self.clock.now += self.ms / 1000.0 * len(texts)
        else:
            time.sleep(self.ms / 1000.0)
        spam = np.array([float("win" in t) for t in texts], dtype=np.float32)
        return np.stack([1 - spam, spam], axis=1)

    def size_mb(self):
        return 1.0


def test_interleaved_ratio_of_a_model_against_itself_is_one():
    m = _Sleeper(1.0)  # real sleeps: the ratio of a model to itself is ~1 however busy the machine
    r = evaluate.speed_ratio(m, m, ["a", "b"], rounds=20, runs=5, warmup=1, noise_sources=quiet_sources())
    assert 0.8 < r["speedup"] < 1.25 and r["low"] <= r["speedup"] <= r["high"]
    assert len(r["ratios"]) == 20 and r["rounds"] == 20 and r["threads"] >= 1


def test_interleaved_ratio_sees_a_model_twice_as_slow(clock):
    r = evaluate.speed_ratio(_Sleeper(2.0, clock), _Sleeper(1.0, clock), ["a"], rounds=8, runs=4, warmup=1,
                             noise_sources=quiet_sources())
    assert r["speedup"] == pytest.approx(2.0) and r["reliable"], r
    assert r["p5"] <= r["low"] <= r["high"] <= r["p95"]
    fastest = evaluate.speed_ratio(_Sleeper(2.0, clock), _Sleeper(1.0, clock), ["a"], rounds=4, runs=3, warmup=0, statistic="min",
                                   noise_sources=quiet_sources())
    assert fastest["speedup"] == pytest.approx(2.0) and fastest["statistic"] == "min"
    with pytest.raises(ValueError, match="statistic"):
        evaluate.speed_ratio(_Sleeper(1.0), _Sleeper(1.0), ["a"], rounds=2, statistic="mean")
    with pytest.raises(ValueError, match="threads=1"):
        evaluate.speed_ratio(_Sleeper(1.0), _Sleeper(1.0), ["a"], rounds=2, threads=2, cpu_time=True)
    with pytest.raises(ValueError, match="rounds"):
        evaluate.speed_ratio(_Sleeper(1.0), _Sleeper(1.0), ["a"], rounds=1)


def _bench(**sources):
    return evaluate.Benchmark(["win a prize now", "see you at 5"], [1, 0], latency_runs=5, warmup=1,
                              throughput_n=2, batch_sizes=(1,), noise_sources=quiet_sources(**sources))


def _rows(bench, clock, slow_ms=4.0, fast_ms=2.0):
    slow, fast = _Sleeper(slow_ms, clock), _Sleeper(fast_ms, clock)
    bench.run("slow", slow, progress=False)
    bench.run("fast", fast, progress=False)
    return slow, fast


def test_benchmark_table_flags_a_noisy_timing_next_to_the_numbers(clock):
    bench = _bench(load=5.0)
    _rows(bench, clock)
    table = bench.table
    assert table.loc["slow", "speed_check"].startswith("noisy: load average 5.0")
    assert bench.noise_checks["slow"].noisy
    for shown in (table, table[["latency_ms", "size_mb"]], table[["latency_ms"]].round(2)):
        assert "Speed columns unreliable" in repr(shown) and "rerun" in repr(shown)
        assert "course-noise-note" in shown._repr_html_()
    assert "unreliable" not in repr(table[["size_mb"]])  # no speed column shown, no note


def test_benchmark_table_of_a_clean_timing_has_no_note(clock):
    bench = _bench()
    _rows(bench, clock)
    assert set(bench.table["speed_check"]) == {"ok"}
    assert "unreliable" not in repr(bench.table) and "course-noise-note" not in bench.table._repr_html_()


def test_verdict_from_a_noisy_speed_says_unreliable(clock):
    bench = _bench(load=5.0)
    _rows(bench, clock)
    c = bench.compare("slow", "fast")  # same size and quality: only the (noisy) speed could be a gain
    assert c.attrs["speed_reliable"] is False and "busy machine" in c.attrs["speed_note"]
    assert c.attrs["verdict"] == "depends on the use case"
    assert "speed unreliable" in c.attrs["reason"] and "faster" not in c.attrs["reason"]
    clean = _bench()
    _rows(clean, clock)
    assert clean.compare("slow", "fast").attrs["verdict"] == "good"  # 2x faster, trusted
    label, reason = evaluate.verdict(0.5, 1.0, 2.0, speed_reliable=False)
    assert label == "depends on the use case" and "speed unreliable" in reason


def test_compare_interleaved_reports_the_speedup_with_its_spread(clock):
    bench = _bench(load=5.0)  # a busy machine: the interleaved ratio still counts
    slow, fast = _rows(bench, clock)
    c = bench.compare("slow", "fast", interleaved=True, rounds=6, runs=3)
    assert c.attrs["speedup"] == pytest.approx(2.0) and c.attrs["speedup_low"] <= c.attrs["speedup_high"]
    assert c.attrs["speedup_rounds"] == 6 and "interleaved over 6 rounds" in c.attrs["speed_note"]
    row = c.loc["speedup b1 (interleaved)"]
    assert row["variant"] == pytest.approx(c.attrs["speedup"]) and "25-75 %" in row["unit"]
    assert c.attrs["speed_reliable"] and c.attrs["verdict"] == "good"  # the rows' noisy latencies do not matter
    del slow, fast
    with pytest.raises(ValueError, match="no longer exists"):
        bench.compare("slow", "fast", interleaved=True)
    c = bench.compare("slow", "fast", interleaved=True, models=(_Sleeper(2.0, clock), _Sleeper(2.0, clock)),
                     rounds=4, runs=2)
    assert c.attrs["speedup"] == pytest.approx(1.0)


def test_latency_ms_reports_its_noise_check():
    lat = evaluate.latency_ms(_Sleeper(1.0), ["a"], runs=5, warmup=1, noise_sources=quiet_sources(load=9.0))
    assert lat["noisy"] and lat["noise"].startswith("noisy: load average 9.0")
    assert lat["noise_check"].threads >= 1
