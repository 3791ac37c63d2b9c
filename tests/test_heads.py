"""Task heads: formulas, option errors, and each head training through train() and the CLI."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from mtl_tutor.checkpoint import load_run
from mtl_tutor.cli import main
from mtl_tutor.data import load_task
from mtl_tutor.data.tasks import get_task
from mtl_tutor.evaluate import ordered_batches
from mtl_tutor.heads import HEADS, SYMMETRIC_PAIR_FEATURES, build_head
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.run_log import read_steps
from mtl_tutor.train import train

C, B = 8, 4


@pytest.fixture
def uv():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, C, generator=g), torch.randn(B, C, generator=g)


def features(u, v):
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


FORMULAS = {  # each head's output, written out from its parts (dropout off)
    "sentence-mlp": lambda head, x: head.net(x).squeeze(-1),
    "cross-mlp": lambda head, x: head.net(x).squeeze(-1),
    "pair-mlp": lambda head, u, v: head.net(features(u, v)).squeeze(-1),
    "pair-sigmoid": lambda head, u, v: 5 * torch.sigmoid(head.net(features(u, v)).squeeze(-1)),
    "cosine": lambda head, u, v: 5 * F.cosine_similarity(u, v, dim=-1).clamp_min(0),
    "cosine-logit": lambda head, u, v: head.scale * F.cosine_similarity(u, v, dim=-1)
    + head.bias,
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_computes_its_formula(name, uv):
    assert set(FORMULAS) == set(HEADS)
    head = build_head(name, C, 1).eval()
    inputs = uv if head.takes_pair else uv[:1]
    with torch.no_grad():
        torch.testing.assert_close(head(*inputs), FORMULAS[name](head, *inputs))


def test_sentence_head_gives_class_logits_and_can_use_tanh(uv):
    head = build_head("sentence-mlp", C, 5, hidden_layers=(6, 7), activation="tanh")
    assert head(uv[0]).shape == (B, 5)
    assert sum(isinstance(m, torch.nn.Tanh) for m in head.modules()) == 2
    assert [m.out_features for m in head.modules() if isinstance(m, torch.nn.Linear)] == [6, 7, 5]


def test_cosine_head_is_five_times_the_rectified_cosine(uv):
    u, v = uv
    head = build_head("cosine", C, 1)
    expected = 5 * (F.cosine_similarity(u, v, dim=-1)).clamp_min(0)
    assert torch.allclose(head(u, v), expected)
    assert not list(head.parameters())  # a fixed scale: nothing to learn


def test_cosine_logit_head_has_a_learnable_scale_and_bias(uv):
    u, v = uv
    head = build_head("cosine-logit", C, 1)
    with torch.no_grad():
        head.bias.fill_(-0.5)
    cos = F.cosine_similarity(u, v, dim=-1)
    assert torch.allclose(head(u, v), 10 * cos - 0.5)
    assert {n for n, _ in head.named_parameters()} == {"scale", "bias"}
    fixed = build_head("cosine-logit", C, 1, learnable_scale=False, scale=3.0, bias=False)
    assert torch.allclose(fixed(u, v), 3 * cos) and not list(fixed.parameters())


def test_pair_sigmoid_head_is_a_score_between_zero_and_five(uv):
    head = build_head("pair-sigmoid", C, 1, features="u,v,|u-v|").eval()
    raw = head.net(torch.cat([uv[0], uv[1], (uv[0] - uv[1]).abs()], -1)).squeeze(-1)
    assert torch.allclose(head(*uv), 5 * torch.sigmoid(raw))


@pytest.mark.parametrize("features", SYMMETRIC_PAIR_FEATURES)
def test_symmetric_pair_features_give_the_same_output_for_either_order(features, uv):
    u, v = uv
    head = build_head("pair-mlp", C, 1, features=features, hidden_layers=(6,)).eval()
    parts = {"u+v": u + v, "|u-v|": (u - v).abs(), "u*v": u * v}
    expected = head.net(torch.cat([parts[f] for f in features.split(",")], -1)).squeeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(head(u, v), expected)
        torch.testing.assert_close(head(v, u), head(u, v))
    asymmetric = build_head("pair-mlp", C, 1).eval()
    with torch.no_grad():
        assert not torch.allclose(asymmetric(v, u), asymmetric(u, v))


@pytest.mark.parametrize("name, options, match", [
    ("nope", {}, "valid heads"),
    ("pair-mlp", {"features": "u"}, "features"),
    ("sentence-mlp", {"pooling": "max"}, "pooling"),
    ("sentence-mlp", {"activation": "gelu"}, "activation"),
    ("sentence-mlp", {"dropout": 1.0}, "dropout"),
    ("sentence-mlp", {"colour": 1}, "bad options"),
    ("cosine", {"scale": 0.0}, "scale"),
])
def test_bad_head_options_name_the_problem(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_head(name, C, 1, **options)


def test_a_cosine_head_needs_a_five_class_free_task():
    with pytest.raises(ValueError, match="out_features"):
        build_head("cosine", C, 5)


def test_the_model_checks_heads_against_the_pair_encoding(tiny_backbone):
    bert, _ = tiny_backbone
    tasks = {"sts": get_task("sts")}
    with pytest.raises(ValueError, match="cross-encoded"):
        MultitaskModel(bert, tasks, {"sts": {"name": "cosine"}}, pair_encodings={"sts": "cross"})
    with pytest.raises(ValueError, match="cannot read"):
        MultitaskModel(bert, tasks, {"sts": {"name": "cross-mlp"}})
    model = MultitaskModel(bert, tasks, pair_encodings={"sts": "cross"})
    assert model.head_configs["sts"]["name"] == "cross-mlp"


def test_head_options_without_a_name_tune_the_default_head(tiny_backbone):
    bert, _ = tiny_backbone
    model = MultitaskModel(bert, {"sts": get_task("sts")}, {"sts": {"hidden_layers": (16,)}})
    assert model.head_configs["sts"] == {"name": "pair-mlp", "features": "u,v,|u-v|,u*v",
                                         "hidden_layers": (16,)}


def run_config(synthetic_dir, tmp_path, **kw):
    base = dict(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"), epochs=1,
                max_steps=2, batch_size=8, max_length=32, eval_batch_size=32, progress=False)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("options, task", [
    ({"heads": {"sts": {"name": "cosine"}, "quora": {"name": "cosine-logit"},
                "sst": {"name": "sentence-mlp", "hidden_layers": [16], "activation": "tanh",
                        "pooling": "cls"}}}, "quora"),
    ({"heads": {"sts": {"name": "pair-sigmoid", "pooling": "pooler"}}}, "sts"),
    ({"pair_encoding": "cross", "heads": {"quora": {"name": "cross-mlp", "pooling": "cls"}}},
     "quora"),
    ({"heads": {"sst": {"name": "sentence-mlp", "hidden_layers": [16], "activation": "tanh",
                        "pooling": "cls"}}}, "sst"),
], ids=["cosine-logit", "pair-sigmoid", "cross", "sentence-tanh"])
def test_a_head_trained_through_the_config_predicts_by_its_formula(options, task, synthetic_dir,
                                                                    tmp_path):
    train(run_config(synthetic_dir, tmp_path, **options))
    model, tokenizer, config = load_run(tmp_path / "run")
    name = config.heads[task].name
    assert model.head_configs[task]["name"] == name  # heads.json holds what the config asked
    batch = next(ordered_batches(load_task(synthetic_dir, task, "dev"), tokenizer, 8,
                                 pair_encoding=config.encoding_of(task), max_length=32))
    with torch.no_grad():
        expected = FORMULAS[name](model.heads[task], *model.embed(batch))
    torch.testing.assert_close(model(batch), expected)
    log = read_steps(tmp_path / "run")
    assert len(log) == 2 and all(math.isfinite(v) for r in log for v in r.losses.values())


def test_cli_trains_cross_encoded_quora_with_a_cosine_sts_head_then_evaluates(
        synthetic_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(run),
                 "--pair-encoding", "cross", "--pair-encoding", "sts=bi", "--head", "sts=cosine",
                 "--head-opt", "quora.hidden_layers=[16]", "--max-steps", "2", "--epochs", "1",
                 "--batch-size", "8", "--no-progress"]) == 0
    config = json.loads((run / "run_config.json").read_text())
    assert config["pair_encoding"] == "cross" and config["pair_encodings"] == {"sts": "bi"}
    heads = json.loads((run / "heads.json").read_text())
    assert heads["sts"]["name"] == "cosine" and heads["quora"]["name"] == "cross-mlp"
    assert heads["quora"]["hidden_layers"] == [16]
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--data", str(synthetic_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    best = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])
    assert metrics["overall"] == pytest.approx(best["overall"], abs=1e-6)
