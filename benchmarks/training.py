"""Where the teacher's fine-tune spends its time, and what each saving buys (issue 12), side by side in one run.

Every variant trains its own copy of the pretrained teacher on the SAME length-bucketed batches of the SMS
training split, one step of each variant in turn (A, B, C, ..., A, B, C, ...), so all of them see the same
load; the first steps are a warm-up. Printed: ms per optimizer step (mean over the measured steps), the
split forward / backward / optimizer of the plain recipe, the ratio of each variant to the plain one, the
load average and the CPU's int8/bf16 features. Whether a saving keeps the teacher's F1 is a separate,
slow question (a whole fine-tune per recipe): see the closing notes of issue 12.

    python benchmarks/training.py               # 24 measured steps per variant
    python benchmarks/training.py --steps 8     # shorter
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib import config, data, models, train  # noqa: E402
from cpu import cpu_features  # noqa: E402 - the benchmarks' shared CPU facts (benchmarks/cpu.py)


VARIANTS = {  # name: (frozen encoder blocks, freeze the embeddings, fused AdamW)
    "plain (the teacher's recipe)": (None, False, False),
    "embeddings frozen": (0, True, False),
    "embeddings frozen + fused AdamW": (0, True, True),
    "embeddings + 2 blocks frozen + fused": (2, True, True),
    "embeddings + 3 blocks frozen + fused": (3, True, True),
}


def make_variant(blocks, embeddings, fused):
    clf = models.load_teacher(seed=0)
    if blocks is not None:
        train.freeze_lower(clf, layers=blocks, embeddings=embeddings)
    params = [p for p in clf.model.parameters() if p.requires_grad]
    clf.model.train()
    return clf, params, torch.optim.AdamW(params, lr=1e-4, fused=fused)


def step(clf, params, optimizer, batch, ids, lengths, labels, parts_time=None):
    t0 = time.perf_counter()
    for part in train.micro_batches(batch, lengths, train.MAX_TOKENS_PER_STEP):
        enc = clf.tokenizer.pad({"input_ids": [ids[i] for i in part]}, padding=True, return_tensors="pt")
        out = clf.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        loss = torch.nn.functional.cross_entropy(out.logits, labels[part]) * len(part) / len(batch)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if parts_time is not None:
            parts_time["forward"] += t1 - t0
            parts_time["backward"] += t2 - t1
        t0 = t2
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if parts_time is not None:
        parts_time["optimizer"] += time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24, help="measured steps per variant (after 4 warm-up steps)")
    args = parser.parse_args()
    config.set_threads()
    splits = data.sms_splits(seed=0)
    texts, label_list = data.as_lists(splits.train)
    variants = {name: make_variant(*spec) for name, spec in VARIANTS.items()}
    first = next(iter(variants.values()))[0]
    ids = first.tokenizer(texts, truncation=True, max_length=first.max_length)["input_ids"]
    lengths = [len(x) for x in ids]
    labels = torch.tensor(label_list)
    batches = train.length_bucketed_batches(lengths, 32, seed=0)[: args.steps + 4]
    seconds = dict.fromkeys(variants, 0.0)
    parts = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    load_before = os.getloadavg()
    for i, batch in enumerate(batches):
        for name, (clf, params, optimizer) in variants.items():
            start = time.perf_counter()
            plain = name == next(iter(variants))
            step(clf, params, optimizer, batch, ids, lengths, labels, parts if (plain and i >= 4) else None)
            if i >= 4:
                seconds[name] += time.perf_counter() - start
    load_after = os.getloadavg()
    n = len(batches) - 4
    plain_s = seconds[next(iter(variants))]
    steps_per_epoch = -(-len(ids) // 32)
    print(f"Teacher fine-tune steps (batch 32, SMS training split: {len(ids)} messages, {steps_per_epoch} steps "
          f"per epoch), {n} measured steps per variant, interleaved, {config.num_threads()} threads")
    print(f"CPU int8/bf16 features: {cpu_features()}; load average before {load_before[0]:.1f}, after "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores" + ("  (NOISY: other work is running)"
                                                              if max(load_before[0], load_after[0]) > config.num_threads() + 0.5 else ""))
    print(f"plain recipe, per step: forward {parts['forward'] / n * 1e3:.0f} ms, backward "
          f"{parts['backward'] / n * 1e3:.0f} ms, clip + optimizer {parts['optimizer'] / n * 1e3:.0f} ms")
    print(f"{'variant':40s} {'ms/step':>8s} {'speed-up':>9s} {'trainable params':>17s}")
    for name, (clf, params, _) in variants.items():
        print(f"{name:40s} {seconds[name] / n * 1e3:8.0f} {plain_s / seconds[name]:8.2f}x "
              f"{sum(p.numel() for p in params) / 1e6:14.1f} M")
    return 0


if __name__ == "__main__":
    sys.exit(main())
