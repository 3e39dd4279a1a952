"""Chapter 04's exercise checkers: the reference passes; each known mistake is named."""

from __future__ import annotations

import torch

from course_lib.exercises import pruning as ex


def test_mask_reference_passes_and_stub_is_reported():
    assert ex.check_magnitude_masks(ex.reference_magnitude_masks) == "passed"

    def stub(weights, sparsity, scope):
        raise NotImplementedError
    assert ex.check_magnitude_masks(stub).startswith("not written yet")

    def other_ties(weights, sparsity, scope):  # a different but valid tie-break still passes
        return [m.flip(0, 1) for m in ex.reference_magnitude_masks([w.flip(0, 1) for w in weights], sparsity, scope)]
    assert ex.check_magnitude_masks(other_ties) == "passed"
    ties = ex._mask_cases()[-1][1]
    assert not torch.equal(other_ties(ties, 0.5, "layer")[0], ex.reference_magnitude_masks(ties, 0.5)[0])


def _mask_by(scores_of, count=lambda s, n: int(round(s * n)), swap=False):
    def fn(weights, sparsity, scope):
        if swap:
            scope = "global" if scope == "layer" else "layer"
        groups = [[w] for w in weights] if scope == "layer" else [list(weights)]
        out = []
        for group in groups:
            flat = torch.cat([scores_of(w).flatten() for w in group])
            keep = torch.ones_like(flat, dtype=torch.bool)
            keep[torch.argsort(flat)[:count(sparsity, flat.numel())]] = False
            out += [m.view_as(w) for m, w in zip(torch.split(keep, [w.numel() for w in group]), group)]
        return out
    return fn


def _threshold(strict):
    def fn(weights, sparsity, scope):
        out = []
        for w in weights:
            pool = w.abs().flatten() if scope == "layer" else torch.cat([x.abs().flatten() for x in weights])
            k = int(round(sparsity * pool.numel()))
            t = torch.kthvalue(pool, k).values
            out.append(w.abs() > t if strict else w.abs() >= t)
        return out
    return fn


def test_each_mask_mistake_is_named():
    assert "kept the smallest" in ex.check_magnitude_masks(_mask_by(lambda w: -w.abs()))
    assert "signed values" in ex.check_magnitude_masks(_mask_by(lambda w: w))
    assert "wrong count" in ex.check_magnitude_masks(_mask_by(lambda w: w.abs(), count=lambda s, n: int(s * n)))
    assert "too many go" in ex.check_magnitude_masks(_threshold(strict=True))
    assert "too few go" in ex.check_magnitude_masks(_threshold(strict=False))
    assert "mixed up" in ex.check_magnitude_masks(_mask_by(lambda w: w.abs(), swap=True))
    assert "boolean" in ex.check_magnitude_masks(lambda ws, s, scope: [torch.ones_like(w) for w in ws])
    assert "raised ZeroDivisionError" in ex.check_magnitude_masks(lambda ws, s, scope: 1 / 0)


def _linear(weight, bias):
    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
    return lin


def test_neuron_reference_passes_and_mistakes_are_named():
    assert ex.check_remove_neurons(ex.reference_remove_neurons) == "passed"

    def stub(a, b, drop):
        raise NotImplementedError
    assert ex.check_remove_neurons(stub).startswith("not written yet")

    def keep(a, drop):
        return [j for j in range(a.out_features) if j not in drop]

    def wrong_dim(a, b, drop):
        k = keep(a, drop)
        return _linear(a.weight[k], a.bias[k]), _linear(b.weight[k[: b.out_features - len(drop)]], b.bias[: b.out_features - len(drop)])
    assert "wrong dimension" in ex.check_remove_neurons(wrong_dim)

    def no_in_bias(a, b, drop):  # slices the weights in place and leaves the first bias whole
        k = keep(a, drop)
        a.weight = torch.nn.Parameter(a.weight[k].detach())
        a.out_features = len(k)
        b.weight = torch.nn.Parameter(b.weight[:, k].detach())
        b.in_features = len(k)
        return a, b
    assert "forgot the bias" in ex.check_remove_neurons(no_in_bias)

    def fresh_in_bias(a, b, drop):
        k = keep(a, drop)
        return _linear(a.weight[k], torch.zeros(len(k))), _linear(b.weight[:, k], b.bias)
    assert "forgot the bias" in ex.check_remove_neurons(fresh_in_bias)

    def fresh_out_bias(a, b, drop):
        k = keep(a, drop)
        return _linear(a.weight[k], a.bias[k]), _linear(b.weight[:, k], torch.zeros(b.out_features))
    assert "output Linear's bias" in ex.check_remove_neurons(fresh_out_bias)

    def kept_dropped(a, b, drop):
        return _linear(a.weight[list(drop)], a.bias[list(drop)]), _linear(b.weight[:, list(drop)], b.bias)
    assert "you were told to remove" in ex.check_remove_neurons(kept_dropped)

    def shifted(a, b, drop):  # the right count, the wrong rows
        k = keep(a, drop)
        k2 = [(j + 1) % a.out_features for j in k]
        return _linear(a.weight[k2], a.bias[k2]), _linear(b.weight[:, k2], b.bias)
    assert "wrong rows" in ex.check_remove_neurons(shifted)
