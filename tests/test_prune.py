"""course_lib.prune on tiny random BERT / DistilBERT / RoBERTa models (seconds, no training but one short run).

Weights are initialised with a large spread (initializer_range 0.3) so that removing a neuron or a head
changes the logits visibly: "equal to masking" then means something.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import models, prune
from course_lib.models import TextClassifier

TEXTS = ["WINNER!! Claim your free prize now, call 0800 123", "see you at lunch tomorrow?",
         "URGENT: your account is locked, text BACK to 80082", "ok thanks, love you",
         "Can you pick up milk on the way home", "Free entry in 2 a wkly comp to win FA Cup final tkts"] * 3
ARCHS = ("bert", "distilbert", "roberta")


def tiny(arch: str = "bert", seed: int = 0) -> TextClassifier:
    """A 2-layer, hidden-32, 4-head, 64-neuron random classifier of the given family (teacher's tokenizer)."""
    import transformers as tf
    from course_lib import students

    tokenizer = students._teacher_tokenizer()
    common = dict(vocab_size=len(tokenizer), initializer_range=0.3, num_labels=2, pad_token_id=tokenizer.pad_token_id)
    if arch == "distilbert":
        cfg, cls = tf.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64,
                                       **common), tf.DistilBertForSequenceClassification
    else:
        cfg_cls, cls = {"bert": (tf.BertConfig, tf.BertForSequenceClassification),
                        "roberta": (tf.RobertaConfig, tf.RobertaForSequenceClassification)}[arch]
        cfg = cfg_cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=66, **common)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    return TextClassifier(model=model, tokenizer=tokenizer, max_length=48, name=f"tiny {arch}")


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def bert():
    return tiny("bert")


# --------------------------------------------------------------------------- magnitude


@pytest.mark.parametrize("s", [0.3, 0.5, 0.9])
def test_layer_magnitude_sparsity_is_exact_per_layer(bert, s):
    before = copy.deepcopy(bert.model)
    pruned = prune.magnitude(bert, s, scope="layer")
    report = prune.sparsity_report(pruned)
    assert (report["zeros"] == (report["weights"] * s).round().astype(int)).all()
    assert prune.sparsity(pruned) == pytest.approx(s, abs=1e-3)
    assert prune.sparsity(bert) == 0.0 and same_weights(bert.model, before)  # the original is untouched
    assert not any(hasattr(m, "weight_orig") for m in pruned.model.modules())  # masks made permanent
    # the kept weights are the largest ones of each layer
    layer = prune.layers(pruned)[0]["ffn_in"].weight
    original = prune.layers(bert)[0]["ffn_in"].weight
    assert original[layer == 0].abs().max() <= original[layer != 0].abs().min()


def test_global_magnitude_is_exact_overall_and_uneven_per_layer(bert):
    pruned = prune.magnitude(bert, 0.6, scope="global")
    report = prune.sparsity_report(pruned)
    assert report["zeros"].sum() == round(0.6 * report["weights"].sum())
    assert report["sparsity"].std() > 0.0  # one threshold: layers lose different shares
    weights = torch.cat([prune.layers(bert)[i][r].weight.flatten() for i in range(2) for r in prune.ROLES])
    kept = torch.cat([prune.layers(pruned)[i][r].weight.flatten() for i in range(2) for r in prune.ROLES])
    assert weights[kept == 0].abs().max() <= weights[kept != 0].abs().min()


def test_magnitude_on_a_bare_module_returns_a_module(bert):
    pruned = prune.magnitude(bert.model, 0.5)
    assert isinstance(pruned, torch.nn.Module) and prune.sparsity(pruned) == pytest.approx(0.5, abs=1e-3)


def test_prune_group_touches_only_that_group(bert):
    pruned = prune.prune_group(bert, "ffn_in", 0.5, layer=1)
    report = prune.sparsity_report(pruned).set_index(["layer", "role"])["sparsity"]
    assert report[(1, "ffn_in")] == pytest.approx(0.5)
    assert (report.drop((1, "ffn_in")) == 0).all()
    assert prune.sparsity_report(prune.magnitude(bert, 0.5, groups="ffn")).query("role == 'query'")["zeros"].sum() == 0
    attention = prune.sparsity_report(prune.prune_group(bert, "attention", 0.5))
    assert (attention.query("role in ['query','key','value','attn_out']")["sparsity"] == 0.5).all()
    assert (attention.query("role in ['ffn_in','ffn_out']")["sparsity"] == 0).all()


# --------------------------------------------------------------------------- structured: neurons and heads


def mask_neurons(clf: TextClassifier, plan: dict) -> TextClassifier:
    model = copy.deepcopy(clf.model)
    for i, drop in plan.items():
        with torch.no_grad():
            prune.layers(model)[i]["ffn_out"].weight[:, list(drop)] = 0.0
    return TextClassifier(model=model, tokenizer=clf.tokenizer, max_length=clf.max_length)


@pytest.mark.parametrize("arch", ARCHS)
def test_slicing_neurons_equals_masking_them(arch):
    clf = tiny(arch)
    plan = {0: [1, 5, 7, 30], 1: list(range(0, 64, 2))}
    sliced = prune.remove_neurons(clf, plan)
    assert prune.structure(sliced)["ffn_neurons"].tolist() == [60, 32]
    assert sliced.num_parameters() < clf.num_parameters()
    np.testing.assert_allclose(sliced.logits(TEXTS), mask_neurons(clf, plan).logits(TEXTS), atol=1e-5)
    assert np.abs(sliced.logits(TEXTS) - clf.logits(TEXTS)).max() > 1e-2  # removing them did matter


@pytest.mark.parametrize("arch", ARCHS)
def test_activation_pruning_removes_the_least_active_neurons(arch):
    clf = tiny(arch)
    before = copy.deepcopy(clf.model)
    pruned = prune.activation(clf, TEXTS, 0.25)
    assert prune.structure(pruned)["ffn_neurons"].tolist() == [48, 48]
    stats = prune.ffn_statistics(clf, TEXTS)
    plan = {i: np.argsort(s["mean_abs"])[:16].tolist() for i, s in enumerate(stats)}
    np.testing.assert_allclose(pruned.logits(TEXTS), mask_neurons(clf, plan).logits(TEXTS), atol=1e-5)
    assert same_weights(clf.model, before)
    assert pruned.meta["pruning"][-1]["ffn_neurons"] == [48, 48]


def test_ffn_statistics_ignore_padding(bert):
    texts = [TEXTS[0], TEXTS[3]]  # the second is much shorter: padded when the two share a batch
    together = prune.ffn_statistics(bert, texts, batch_size=2)
    apart = prune.ffn_statistics(bert, texts, batch_size=1)
    for a, b in zip(together, apart):
        np.testing.assert_allclose(a["mean_abs"], b["mean_abs"], rtol=1e-4)
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-4, atol=1e-6)
    lengths = bert.encode(texts)["attention_mask"].sum(1)
    assert together[0]["tokens"] == apart[0]["tokens"] == int(lengths.sum()) < 2 * int(lengths.max())


def zero_heads(clf: TextClassifier, plan: dict, where: str) -> TextClassifier:
    """Mask heads without removing them: zero their V rows (and V bias) or their columns of the output Linear."""
    model = copy.deepcopy(clf.model)
    for i, drop in plan.items():
        layer = prune.layers(model)[i]
        d = layer.head_size
        with torch.no_grad():
            for h in drop:
                cut = slice(h * d, (h + 1) * d)
                if where == "value":
                    layer["value"].weight[cut] = 0.0
                    layer["value"].bias[cut] = 0.0
                else:
                    layer["attn_out"].weight[:, cut] = 0.0
    return TextClassifier(model=model, tokenizer=clf.tokenizer, max_length=clf.max_length)


@pytest.mark.parametrize("arch", ARCHS)
def test_removing_heads_equals_masking_them(arch):
    clf = tiny(arch)
    plan = {0: [1], 1: [0, 2, 3]}
    sliced = prune.remove_heads(clf, plan)
    assert prune.structure(sliced)["heads"].tolist() == [3, 1]
    out = sliced.logits(TEXTS)
    np.testing.assert_allclose(out, zero_heads(clf, plan, "value").logits(TEXTS), atol=1e-5)
    np.testing.assert_allclose(out, zero_heads(clf, plan, "attn_out").logits(TEXTS), atol=1e-5)
    assert np.abs(out - clf.logits(TEXTS)).max() > 1e-2


def test_heads_removes_the_least_important_and_keeps_one_per_layer(bert):
    scores = prune.head_importance(bert, TEXTS)
    assert [len(s) for s in scores] == [4, 4]
    assert all(np.linalg.norm(s) == pytest.approx(1.0) for s in scores)
    pruned = prune.heads(bert, TEXTS, 0.25)  # 2 of 8 heads
    ranked = sorted((s, i, h) for i, row in enumerate(scores) for h, s in enumerate(row))
    plan = {0: [], 1: []}
    for _, i, h in ranked[:2]:
        plan[i].append(h)
    np.testing.assert_allclose(pruned.logits(TEXTS), zero_heads(bert, plan, "attn_out").logits(TEXTS), atol=1e-5)
    assert prune.structure(prune.heads(bert, TEXTS, 0.95))["heads"].tolist() == [1, 1]


def test_pruned_model_saves_and_reloads_with_the_same_logits(bert, tmp_cache):
    pruned = prune.heads(prune.activation(bert, TEXTS, 0.5), TEXTS, 0.5)
    pruned = prune.magnitude(pruned, 0.3)
    key = models.cache_key(test="pruned-reload")
    models.save_classifier(pruned, key)
    loaded = models.load_classifier(key)
    assert loaded.meta["edited_shapes"] is True
    assert [p["method"] for p in loaded.meta["pruning"]][0].startswith("activation")
    assert prune.structure(loaded).equals(prune.structure(pruned))
    assert prune.sparsity(loaded) == pytest.approx(prune.sparsity(pruned))
    np.testing.assert_allclose(loaded.logits(TEXTS), pruned.logits(TEXTS), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- redundancy


@pytest.mark.parametrize("arch", ARCHS)
def test_merging_an_exact_duplicate_neuron_keeps_the_logits(arch):
    clf = tiny(arch)
    layer = prune.layers(clf)[0]
    with torch.no_grad():  # neuron 9 becomes an exact copy of neuron 4 (same incoming weights, other outgoing ones)
        layer["ffn_in"].weight[9] = layer["ffn_in"].weight[4]
        layer["ffn_in"].bias[9] = layer["ffn_in"].bias[4]
    merged = prune.redundancy(clf, TEXTS, threshold=0.9999)
    report = merged.meta["pruning"][-1]
    assert report["pairs_found"][0] == 2 and report["merged"] == [1, 0]  # the pair, seen from both sides
    assert prune.structure(merged)["ffn_neurons"].tolist() == [63, 64]
    np.testing.assert_allclose(merged.logits(TEXTS), clf.logits(TEXTS), atol=1e-4)
    assert report["logit_change_max"] < 1e-4
    plain = prune.remove_neurons(clf, {0: [9]})  # dropping it without folding its weights does change them
    assert np.abs(plain.logits(TEXTS) - clf.logits(TEXTS)).max() > 1e-2


def test_merges_are_ranked_by_cost_not_by_correlation(bert):
    """Pair A (9 ~ 4) is the most correlated but carries large outgoing weights; pair B (20 ~ 11) is less
    correlated with tiny ones. With a budget of one merge, the cheapest (B: drop 20) must be made."""
    clf = copy.deepcopy(bert)
    layer = prune.layers(clf)[0]
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for twin, j, noise in ((4, 9, 1e-3), (11, 20, 5e-2)):
            layer["ffn_in"].weight[j] = layer["ffn_in"].weight[twin] + noise * torch.randn(32, generator=gen)
            layer["ffn_in"].bias[j] = layer["ffn_in"].bias[twin]
        layer["ffn_out"].weight[:, 9] *= 100.0
        layer["ffn_out"].weight[:, 20] *= 1e-3
    stats = prune.ffn_statistics(clf, TEXTS, covariance=True)[0]
    rho = stats["cov"] / np.sqrt(np.outer(np.diag(stats["cov"]), np.diag(stats["cov"])))
    assert abs(rho[4, 9]) > abs(rho[11, 20]) > 0.9  # A is the more correlated pair
    one = prune.redundancy(clf, TEXTS, threshold=0.9, ratio=1 / 64)
    assert one.meta["pruning"][-1]["merged"][0] == 1
    kept = prune.layers(one)[0]["ffn_in"].weight
    original = layer["ffn_in"].weight
    dropped = [j for j in range(64) if not any(torch.equal(original[j], kept[k]) for k in range(63))]
    assert dropped == [20]


# --------------------------------------------------------------------------- fine-tuning keeps the zeros


def test_fine_tuning_keeps_the_zeros(bert):
    pruned = prune.magnitude(bert, 0.5)
    zeros = [prune.layers(pruned)[i][r].weight == 0 for i in range(2) for r in prune.ROLES]
    train_df = pd.DataFrame({"text": TEXTS, "label": [1, 0, 1, 0, 0, 1] * 3})
    tuned, history = prune.fine_tune_pruned(pruned, train_df, epochs=1, batch_size=6, lr=1e-3, progress=False)
    assert history["steps"] == 3
    after = [prune.layers(tuned)[i][r].weight for i in range(2) for r in prune.ROLES]
    assert all((w[z] == 0).all() for w, z in zip(after, zeros))
    assert prune.sparsity(tuned) == pytest.approx(prune.sparsity(pruned))
    assert not same_weights(tuned.model, pruned.model)  # it did train
    assert prune.sparsity(pruned) == pytest.approx(0.5, abs=1e-3)  # the input is untouched
    assert not any(hasattr(m, "weight_orig") for m in tuned.model.modules())


def test_fine_tuning_in_place_trains_the_given_model_and_keeps_its_zeros(bert):
    pruned = prune.magnitude(bert, 0.5)
    before = {k: v.clone() for k, v in pruned.model.state_dict().items()}
    train_df = pd.DataFrame({"text": TEXTS, "label": [1, 0, 1, 0, 0, 1] * 3})
    tuned, _ = prune.fine_tune_pruned(pruned, train_df, inplace=True, epochs=1, batch_size=6, lr=1e-3, progress=False)
    assert tuned.model is pruned.model  # no copy
    changed = any(not (before[k] == v).all() for k, v in tuned.model.state_dict().items() if k in before)
    assert changed and prune.sparsity(tuned) == pytest.approx(0.5, abs=1e-3)
    assert not any(hasattr(m, "weight_orig") for m in tuned.model.modules())


# --------------------------------------------------------------------------- errors


def test_unsupported_models_raise_clearly():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=100, n_positions=32))
    with pytest.raises(TypeError, match="Conv1D.*supports BERT"):
        prune.magnitude(gpt2, 0.5)
    with pytest.raises(TypeError, match="supports BERT"):
        prune.sparsity(torch.nn.Sequential(torch.nn.Linear(4, 4)))
    with pytest.raises(TypeError, match="TextClassifier or a torch.nn.Module"):
        prune.sparsity("model")


def test_quantized_or_factorized_layers_are_refused(bert):
    model = copy.deepcopy(bert.model)
    model.bert.encoder.layer[0].intermediate.dense = torch.nn.Sequential(torch.nn.Linear(32, 4), torch.nn.Linear(4, 64))
    with pytest.raises(TypeError, match="not torch.nn.Linear"):
        prune.magnitude(model, 0.5)


@pytest.mark.parametrize("bad", [1.0, -0.1, 50, "0.5", True, None])
def test_bad_ratios_raise_clearly(bert, bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.magnitude(bert, bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.activation(bert, TEXTS, bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.heads(bert, TEXTS, bad)


def test_other_bad_inputs_raise_clearly(bert):
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude(bert, 0.5, scope="row")
    with pytest.raises(ValueError, match="groups"):
        prune.prune_group(bert, "mlp", 0.5)
    with pytest.raises(ValueError, match="out of range"):
        prune.prune_group(bert, "ffn", 0.5, layer=7)
    with pytest.raises(ValueError, match="threshold"):
        prune.redundancy(bert, TEXTS, threshold=1.5)
    with pytest.raises(ValueError, match="keep at least one"):
        prune.remove_neurons(bert, {0: range(64)})
    with pytest.raises(ValueError, match="cannot remove"):
        prune.remove_heads(bert, {0: [4]})
    with pytest.raises(ValueError, match="calibration"):
        prune.activation(bert, [], 0.5)
    model = copy.deepcopy(bert.model)
    torch.nn.utils.prune.l1_unstructured(model.bert.encoder.layer[0].output.dense, "weight", amount=0.5)
    with pytest.raises(ValueError, match="masks attached"):
        prune.magnitude(model, 0.5)


def test_the_small_bert_students_are_supported():
    from course_lib import students

    clf = students.small_bert(layers=1, hidden=32, heads=2, intermediate=64, seed=0)
    assert prune.sparsity(prune.magnitude(clf, 0.5)) == pytest.approx(0.5, abs=1e-3)
    both = prune.heads(prune.activation(clf, TEXTS, 0.5), TEXTS, 0.5)
    assert prune.structure(both)[["heads", "ffn_neurons"]].values.tolist() == [[1, 32]]


def test_redundancy_checks_the_logits_it_is_given(bert):
    with pytest.raises(ValueError, match="one row per calibration text"):
        prune.redundancy(bert, TEXTS, threshold=0.5, logits=bert.logits(TEXTS[:2]))
    given = prune.redundancy(bert, TEXTS, threshold=0.5, logits=bert.logits(TEXTS))
    computed = prune.redundancy(bert, TEXTS, threshold=0.5)
    assert given.meta["pruning"][-1]["logit_change_max"] == pytest.approx(computed.meta["pruning"][-1]["logit_change_max"])
