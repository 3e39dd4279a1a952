"""course_lib.timings: the chapters' time estimates come from recorded measurements, with their machine."""

import pytest

from course_lib import timings


def test_record_estimate_and_table(tmp_path):
    path = tmp_path / "timings.json"
    assert "not measured yet" in timings.estimate("03_quantization", path=path)
    slow = {"cpu": "Test CPU", "cores": 2, "load": 3.5, "speed_gflops": 10.0}
    timings.record("03_quantization", "fast", 300.0, 900, 0, host=slow, path=path)
    text = timings.estimate("03_quantization", here={"speed_gflops": 20.0}, path=path)
    assert "5.0 min" in text and "Test CPU" in text and "load average 3.5" in text
    assert "roughly 2.5 min" in text  # twice as fast here: half the time
    assert "full mode**: not measured yet" in text
    row = timings.table(path).loc[("03_quantization", "fast")]
    assert row["minutes"] == 5.0 and row["GFLOP/s"] == 10.0
    with pytest.raises(ValueError, match="mode"):
        timings.record("03_quantization", "slow", 1, 1, 0, host=slow, path=path)


def test_machine_speed_is_positive():
    m = timings.machine()
    assert m["speed_gflops"] > 0 and m["cores"] >= 1
