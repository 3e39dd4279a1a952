"""Does training several seeds of a tiny student at once pay on this CPU? (issue 12), side by side in one run.

The seed studies (chapters 02, 06, 07) train the same tiny student (2 layers x 128) several times, differing
only in the seed. This script times one optimizer step of K such students two ways, on the SAME real batches
of the SMS training split (length-bucketed, batch 32), one round of each in turn (A, B, A, B, ...) so both
see the same load:

- **one after another**: K models, each its own forward / backward / AdamW step, as the studies do today
  (PyTorch's fused attention);
- **stacked**: the K models' weights stacked (``torch.func.stack_module_state``) and one ``vmap``-ed
  ``grad`` over them, then one AdamW step on the stacked tensors (AdamW is element-wise, so this is K
  independent AdamW steps); eager attention, since the mask must be a tensor ``vmap`` can carry.

Every seed gets the same batch here, the most favourable case for stacking (in the studies each seed has
its own batch order, so stacked batches would need padding to a common length). Before timing, the stacked
gradients are checked against the one-after-another gradients with dropout off.

    python benchmarks/seed_batching.py              # 3 seeds, 20 measured rounds
    python benchmarks/seed_batching.py --seeds 4 --rounds 10
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib import config, data, students, train  # noqa: E402
from cpu import cpu_features  # noqa: E402 - the benchmarks' shared CPU facts (benchmarks/cpu.py)


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq) 0/1 mask -> (batch, 1, 1, seq) additive float mask (0 for a token, very negative for padding)."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class OneAfterAnother:
    def __init__(self, seeds):
        self.clfs = [students.small_bert(**students.TINY, seed=s, name=f"seed {s}") for s in seeds]
        self.opts = [torch.optim.AdamW(c.model.parameters(), lr=1e-3) for c in self.clfs]

    def grads(self, enc, labels):
        out = []
        for clf in self.clfs:
            loss = clf.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
            loss.backward()
            out.append({n: p.grad.clone() for n, p in clf.model.named_parameters()})
            clf.model.zero_grad(set_to_none=True)
        return out

    def step(self, enc, labels):
        for clf, opt in zip(self.clfs, self.opts):
            loss = clf.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)


class Stacked:
    def __init__(self, seeds):
        from torch.func import functional_call, grad_and_value, stack_module_state, vmap

        models_ = [students.small_bert(**students.TINY, seed=s, name=f"seed {s}").model for s in seeds]
        for m in models_:
            m.set_attn_implementation("eager")
        self.params, self.buffers = stack_module_state(models_)
        self.base = copy.deepcopy(models_[0]).to("meta")
        self.k = len(models_)

        def loss_fn(params, buffers, ids, mask, labels):
            return functional_call(self.base, (params, buffers), (),
                                   {"input_ids": ids, "attention_mask": mask, "labels": labels}).loss

        self.grad_fn = vmap(grad_and_value(loss_fn), in_dims=(0, 0, None, None, None), randomness="different")
        self.opt = torch.optim.AdamW(list(self.params.values()), lr=1e-3)

    def grads(self, enc, labels):
        grads, _ = self.grad_fn(self.params, self.buffers, enc["input_ids"], additive_mask(enc["attention_mask"]), labels)
        return [{n: g[i] for n, g in grads.items()} for i in range(self.k)]

    def step(self, enc, labels):
        grads, _ = self.grad_fn(self.params, self.buffers, enc["input_ids"], additive_mask(enc["attention_mask"]), labels)
        for name, p in self.params.items():
            p.grad = grads[name]
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def check_gradients(seq: OneAfterAnother, stacked: Stacked, enc, labels) -> float:
    """Largest difference between the two ways' gradients relative to the model's largest gradient (dropout
    off, same weights). Per tensor would not do: the key biases' gradients are zero in exact arithmetic (a
    softmax ignores a constant added to every score of a row), so only rounding is left to compare there."""
    for clf in seq.clfs:
        clf.model.eval()
    stacked.base.eval()
    a, b = seq.grads(enc, labels), stacked.grads(enc, labels)
    worst = 0.0
    with torch.no_grad():
        for ga, gb in zip(a, b):
            scale = max(float(g.abs().max()) for g in ga.values())
            worst = max(worst, max(float((g - gb[name]).abs().max()) for name, g in ga.items()) / scale)
    for clf in seq.clfs:
        clf.model.train()
    stacked.base.train()
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="students trained together (default 3)")
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (after 3 warm-up rounds)")
    args = parser.parse_args()
    config.set_threads()
    seeds = list(range(args.seeds))
    seq, stacked = OneAfterAnother(seeds), Stacked(seeds)
    tok = seq.clfs[0].tokenizer
    texts, label_list = data.as_lists(data.sms_splits(seed=0).train)
    ids = tok(texts, truncation=True, max_length=seq.clfs[0].max_length)["input_ids"]
    batches = train.length_bucketed_batches([len(x) for x in ids], 32, seed=0)[: args.rounds + 3]
    labels_all = torch.tensor(label_list)

    def encoded(batch):
        return tok.pad({"input_ids": [ids[i] for i in batch]}, padding=True, return_tensors="pt"), labels_all[batch]

    worst = check_gradients(seq, stacked, *encoded(batches[0]))  # leaves every model in training mode
    times = {"one after another": [], "stacked (vmap)": []}
    load_before = os.getloadavg()
    for i, batch in enumerate(batches):
        enc, labels = encoded(batch)
        for name, way in (("one after another", seq), ("stacked (vmap)", stacked)):
            start = time.perf_counter()
            way.step(enc, labels)
            if i >= 3:
                times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    a, b = (statistics.median(v) for v in times.values())
    ratios = [x / y for x, y in zip(*times.values())]
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [min(ratios), statistics.median(ratios), max(ratios)]
    print(f"{args.seeds} tiny students ({students.TINY}), batch 32 of the SMS training split, {len(ratios)} measured "
          f"rounds, interleaved, {config.num_threads()} threads")
    print(f"CPU int8/bf16 features: {cpu_features()}; load average before {load_before[0]:.1f}, after "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores" + ("  (NOISY: other work is running)"
                                                              if max(load_before[0], load_after[0]) > config.num_threads() + 0.5 else ""))
    print(f"gradients, stacked vs one after another (dropout off): largest difference {worst:.1e} of the largest gradient")
    print(f"{'way':22s} {'ms per step of all seeds':>25s}")
    for name, v in times.items():
        print(f"{name:22s} {statistics.median(v) * 1e3:25.0f}")
    print(f"speed-up of stacking: {a / b:.2f}x (median of per-round ratios {statistics.median(ratios):.2f}x, "
          f"quartiles {q[0]:.2f}-{q[-1]:.2f}); above 1 it pays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
