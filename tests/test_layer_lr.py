"""Layer-wise learning-rate decay: each layer's rate, the groups a run's optimiser gets, and the
error for a parameter that is not BERT's."""

import pytest

from mtl_tutor.layer_lr import layer_depth, layerwise_groups
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import build_run


def test_depth_counts_layers_from_the_top(tiny_backbone):
    bert, _ = tiny_backbone
    L = bert.config.num_hidden_layers
    depths = {name: layer_depth(name, L) for name, _ in bert.named_parameters()}
    assert depths["embeddings.word_embeddings.weight"] == L
    assert depths[f"encoder.layer.{L - 1}.attention.self.query.weight"] == 0
    assert depths["encoder.layer.0.output.dense.bias"] == L - 1
    assert depths["pooler.dense.weight"] == 0


def test_every_parameter_gets_lr_times_decay_to_its_depth(tiny_backbone):
    bert, _ = tiny_backbone
    L, named = bert.config.num_hidden_layers, list(bert.named_parameters())
    groups = layerwise_groups(named, L, lr=1e-4, decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert sum(len(g["params"]) for g in groups) == len(named) == len(lr_of)
    for name, p in named:
        assert lr_of[id(p)] == pytest.approx(1e-4 * 0.5 ** layer_depth(name, L)), name
    assert [g["lr"] for g in groups] == sorted((g["lr"] for g in groups), reverse=True)
    assert len(groups) == L + 1


def test_no_decay_is_one_group_in_the_parameters_order(tiny_backbone):
    bert, _ = tiny_backbone
    named = list(bert.named_parameters())
    (group,) = layerwise_groups(named, bert.config.num_hidden_layers, lr=3e-5, decay=1.0)
    assert group["lr"] == 3e-5 and [id(p) for p in group["params"]] == [id(p) for _, p in named]


@pytest.mark.parametrize("decay", [0.0, -0.5, 1.5])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match=r"layer_lr_decay must be in \(0, 1\]"):
        layerwise_groups([], 2, lr=1e-4, decay=decay)


def test_a_parameter_outside_bert_is_named_in_the_error():
    with pytest.raises(ValueError, match="'heads.sst.weight' is not a BERT parameter"):
        layer_depth("heads.sst.weight", 2)


def test_a_run_schedules_every_layer_at_its_decayed_rate(synthetic_dir, tmp_path):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         batch_size=8, max_length=32, progress=False, lr=1e-3, head_lr=1e-2,
                         layer_lr_decay=0.8, max_steps=10)
    run = build_run(config)
    L = run.model.bert.config.num_hidden_layers
    for _ in range(3):  # the warm-up and the decay scale every group alike
        run.optimizer.step()
        run.schedule.step()
    rates = run.schedule.get_last_lr()
    assert len(rates) == L + 2  # L + 1 backbone depths and the heads
    for depth, rate in enumerate(rates[:-1]):
        assert rate == pytest.approx(rates[0] * 0.8 ** depth)
    assert rates[-1] == pytest.approx(rates[0] * 10)
    backbone = {id(p) for g in run.optimizer.param_groups[:-1] for p in g["params"]}
    assert backbone == {id(p) for p in run.model.shared_parameters()}
