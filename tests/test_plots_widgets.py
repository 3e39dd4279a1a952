import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_lib import evaluate, explorers, plots


def _table():
    return pd.DataFrame(
        {"accuracy": [0.99, 0.97], "precision": [0.97, 0.9], "recall": [0.98, 0.95], "f1": [0.975, 0.92],
         "latency_ms": [10.0, 3.0], "size_mb": [91.0, 23.0]},
        index=["teacher", "int8"],
    )


def test_plots_draw():
    ax = plots.confusion_matrix([[90, 5], [3, 20]], title="cm")
    assert ax.get_title() == "cm" and len(ax.texts) == 4
    ax = plots.metric_bars(_table())
    assert len(ax.patches) == 8
    ax = plots.bubble_chart(_table())
    assert len(ax.collections[0].get_offsets()) == 2
    ax = plots.threshold_curves(evaluate.threshold_table([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4]), threshold=0.5)
    assert len(ax.lines) == 4
    ax = plots.length_histogram({"ham": [10, 12, 14], "spam": [25, 30, 35]})
    assert ax.get_legend() is not None
    plt.close("all")


def test_threshold_explorer_updates_readout():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    prob = np.clip(y * 0.6 + rng.random(200) * 0.5, 0, 1)
    box = explorers.threshold_explorer(y, prob)
    slider, readout = box.children[0], box.children[1]
    first = readout.value
    slider.value = 0.9
    assert readout.value != first and "0.90" in readout.value
    assert "Threshold explorer" in repr(box)
    plt.close("all")


# --------------------------------------------------------------------------- progress bars


def test_progress_bar_outside_a_notebook_is_plain_tqdm():
    from tqdm.std import tqdm as std_tqdm

    from course_lib import progress

    assert not progress.in_notebook()
    bar = progress.progress_bar(range(3), desc="sweep", disable=True)
    assert type(bar) is std_tqdm and bar.leave is False
    assert list(bar) == [0, 1, 2]


def test_progress_bar_in_a_notebook_leaves_one_line_of_text(monkeypatch):
    """A finished bar's widget is replaced (through its display handle) by text, so a saved
    notebook never shows "Error displaying widget: model not found" where it was."""
    from course_lib import progress

    shown, updates = [], []

    class Handle:
        def update(self, obj, **kwargs):
            updates.append((obj, kwargs))

    def fake_display(obj, **kwargs):
        shown.append((obj, kwargs))
        return Handle()

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "_display", fake_display)
    bar = progress.progress_bar(range(4), desc="bit-width sweep fp32")
    (container, kwargs), = shown
    assert kwargs == {"display_id": True}
    label, widget_bar, _ = container.children
    assert label.layout.flex == "0 0 auto"  # the label never wraps mid-word ("bit-" / "width")
    for _ in bar:
        bar.set_postfix(bits=8)
    (obj, kw), = updates
    assert kw == {"raw": True} and set(obj) == {"text/plain"}
    assert obj["text/plain"] == "bit-width sweep fp32: 4/4 steps in 00:00, bits=8"
    assert container.comm is None and widget_bar.comm is None  # the widget itself is closed
    bar.close()  # closing again changes nothing
    assert len(updates) == 1
    # a bar stopped early says so
    with progress.progress_bar(total=10, desc="fine-tune x") as manual:
        manual.update(3)
    assert updates[-1][0]["text/plain"].startswith("fine-tune x: 3/10 steps in") and "stopped early" in updates[-1][0]["text/plain"]


def test_long_work_uses_the_progress_helper():
    """Every progress bar of the library goes through course_lib.progress (no direct tqdm)."""
    from pathlib import Path

    import course_lib

    root = Path(course_lib.__file__).parent
    direct = [str(p.relative_to(root)) for p in root.rglob("*.py")
              if p.name != "progress.py" and "tqdm" in p.read_text(encoding="utf-8")]
    assert direct == [], direct


# --------------------------------------------------------------------------- bubble chart labels


def _text_boxes(ax):
    from matplotlib.text import Text

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in ax.texts]


def _overlaps(boxes):
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def test_bubble_chart_labels_never_overlap():
    """Chapter 03's variants: fp16 and bf16 at the same place, the ONNX ones next to PyTorch's."""
    table = pd.DataFrame(
        {"f1": [0.950, 0.948, 0.948, 0.947, 0.950, 0.946, 0.949],
         "latency_ms": [10.2, 40.0, 40.0, 6.1, 8.0, 5.9, 6.3],
         "size_mb": [86.7, 43.4, 43.4, 33.1, 86.5, 22.4, 33.0]},
        index=["teacher fp32", "fp16", "bf16", "int8 dynamic (PyTorch)", "ONNX fp32", "ONNX int8", "int8 static"])
    ax = plots.bubble_chart(table)
    boxes = _text_boxes(ax)
    assert [t.split("\n")[0] for t, _ in boxes] == list(table.index)  # every variant labelled on the chart
    assert _overlaps(boxes) == []
    frame = ax.get_window_extent(ax.figure.canvas.get_renderer())
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for _, b in boxes)
    # the naive placement (every label at the same offset) does overlap here: the test can fail
    naive = plt.subplots()[1]
    for name, row in table.iterrows():
        naive.annotate(f"{name}\n{row['size_mb']:.1f} MB", (row["latency_ms"], row["f1"]), fontsize=8,
                       xytext=(8, -4), textcoords="offset points")
    naive.set_xlim(0, 55)
    naive.set_ylim(0.93, 0.97)
    assert _overlaps(_text_boxes(naive))
    plt.close("all")


def test_bubble_chart_crowded_labels_go_to_a_legend_without_overlap():
    table = pd.DataFrame({"f1": [0.9] * 40, "latency_ms": [5.0] * 40, "size_mb": [10.0] * 40},
                         index=[f"variant {i}" for i in range(40)])
    ax = plots.bubble_chart(table)
    boxes = _text_boxes(ax)
    assert _overlaps(boxes) == []
    legend = ax.get_legend()
    assert legend is not None
    on_chart = {t.split("\n")[0] for t, _ in boxes if not t.isdigit()}
    in_legend = {t.get_text().split(": ", 1)[1].split(",")[0] for t in legend.get_texts()}
    assert on_chart | in_legend == set(table.index) and not on_chart & in_legend
    plt.close("all")
