"""Chapter 07's study: the Pareto frontier on hand-made sets, the targets table, the chain's steps (fast mode)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_lib.studies import capstone


def test_pareto_front_on_a_hand_made_set():
    frame = pd.DataFrame({"size_mb": [1, 2, 3, 1, 5, 1], "latency_ms": [5, 2, 1, 5, 5, 5],
                          "f1": [0.90, 0.90, 0.95, 0.80, 0.99, 0.90]}, index=list("abcdef"))
    front = capstone.pareto_front(frame)
    # d is dominated by a (same size and latency, lower F1); f ties a exactly: neither dominates the other
    assert front.to_dict() == {"a": True, "b": True, "c": True, "d": False, "e": True, "f": True}
    two = capstone.pareto_front(frame, minimize=("size_mb",), maximize=("f1",))
    assert two[two].index.tolist() == ["a", "c", "e", "f"]
    with pytest.raises(ValueError, match="latency_ms"):
        capstone.pareto_front(frame.drop(columns="latency_ms"))


def test_meeting_picks_the_smallest_and_the_fastest():
    frame = pd.DataFrame({"size_mb": [90, 0.7, 0.03], "latency_ms": [15, 0.6, 0.9], "f1": [0.95, 0.91, 0.84]},
                         index=["teacher", "shipped", "tfidf"])
    assert capstone.meeting(frame, 0.9) == {"smallest": "shipped", "fastest": "shipped", "count": 2}
    assert capstone.meeting(frame, 0.8) == {"smallest": "tfidf", "fastest": "shipped", "count": 3}
    assert capstone.meeting(frame, 0.99) == {"smallest": None, "fastest": None, "count": 0}


def test_targets_table_checks_the_last_row_against_the_first():
    table = pd.DataFrame({"f1": [0.95, 0.945], "size_x": [1.0, 60.0], "speed_x": [1.0, 8.0]}, index=["teacher", "shipped"])
    t = capstone.targets_met(table)
    assert t.loc["size on disk", "met"] and not t.loc["b1 latency, 1 thread", "met"]
    assert t.loc["spam-F1 loss (points)", "measured"] == pytest.approx(0.5) and t.loc["spam-F1 loss (points)", "met"]


def test_chapter_plan_has_the_issue_targets():
    plan = capstone.chapter_plan()
    assert plan["targets"] == {"size_ratio": 50.0, "speedup": 10.0, "f1_loss_points": 1.0}
    assert 0 < plan["prune_ratio"] < 1 and plan["threads"] == (1, 2)


@pytest.fixture(scope="module")
def chain():
    return capstone.chain(progress=False)


def test_chain_steps_shrink_and_the_file_ships(chain):
    steps = chain["steps"]
    names = list(steps)
    assert names[0] == "teacher" and names[-1] == "5 shipped file"
    s, p, t = steps["1 tiny student"], steps["2 + pruned FFN 50%"], steps["3 + trimmed vocabulary"]
    assert p.num_parameters() < s.num_parameters() and t.num_parameters() < p.num_parameters()
    assert len(t.tokenizer) < len(s.tokenizer)
    served = steps["5 shipped file"]
    assert served.path == chain["path"] and served.size_mb() < t.size_mb() / 2
    texts = capstone.ch02.eval_sets()["sms"]["text"].tolist()[:50]
    p_torch = t.predict_logits(texts)
    p_ship = served.predict_logits(texts)
    assert np.mean(p_torch.argmax(1) == p_ship.argmax(1)) >= 0.96


def test_chain_benchmark_has_a_row_per_step(chain):
    bench, table = capstone.chain_benchmark(chain["steps"], progress=False,
                                            plan={**capstone.chapter_plan(), "latency_runs": 3})
    assert list(table.index) == list(chain["steps"])
    for col in ("ships_mb", "latency_1t_ms", "latency_2t_ms", "throughput_b32", "f1", "f1_low", "f1_high",
                "youtube_f1", "size_x", "speed_x", "verdict"):
        assert table[col].notna().all(), col
    assert (table["f1_low"] <= table["f1"]).all() and (table["f1"] <= table["f1_high"]).all()
    assert table["ships_mb"].iloc[-1] < table["ships_mb"].iloc[0] / 50
    assert table["verdict"].iloc[0] == "baseline"
    assert set(bench.table.index) == set(table.index)


def test_order_study_measures_four_orders_after_int8():
    order = capstone.order_study(plan={**capstone.chapter_plan(), "order_seeds": (0,)}, progress=False)
    assert list(order["order"]) == ["distil → int8", "int8 teacher → distil → int8", "distil → prune → int8",
                                    "prune → distil → int8"]
    assert (order["f1_low"] <= order["f1"]).all() and (order["f1"] <= order["f1_high"]).all()
    pruned_rows = order[order["order"].str.contains("prune")]
    assert (pruned_rows["params_m"] < order.loc[0, "params_m"]).all()
    assert order["ships_mb"].max() < 5
