"""The report recipes in configs/ follow their reports: each report's own STS head and features
(checked against a hand computation on the tiny backbone), the OptimusBERT heads' dropout and
MNRL rules, the Kehoe & Ravella warm-up, epoch sizing, pairing of methods and SMART placement."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mtl_tutor import load_backbone
from mtl_tutor.data import TaskBatches, get_sampler, load_task
from mtl_tutor.heads import mean_pool
from mtl_tutor.leaderboard.recipes import load_recipes, recipe_files
from mtl_tutor.losses import EmbeddingCosineThreshold, LabelThreshold
from mtl_tutor.model import build_model
from mtl_tutor.smart import BregmanProximalPoint, SmoothnessRegulariser

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = {r.name: r.config for path in recipe_files([CONFIGS]) for r in load_recipes(path)}


def tiny_model(name):
    return build_model(load_backbone("tiny", seed=0)[0], replace(RECIPES[name], backbone="tiny"))


def sts_batch(synthetic_dir, tokenizer):
    return next(TaskBatches(load_task(synthetic_dir, "sts", "train"), tokenizer, 6))


def side(bert, batch, s):
    x = batch.inputs
    return bert(x[f"input_ids_{s}"], x[f"attention_mask_{s}"]), x[f"attention_mask_{s}"]


@pytest.mark.parametrize("name", ["gradattention_report_gradattention",
                                  "gradattention_report_pcgrad", "gradattention_report_sum"])
def test_gradattention_recipes_score_sts_as_5_sigmoid_of_a_linear_map_of_mean_pooled_u_v(
        name, tiny_backbone, synthetic_dir):
    bert, tokenizer = tiny_backbone
    model = build_model(bert, replace(RECIPES[name], backbone="tiny")).eval()
    batch = sts_batch(synthetic_dir, tokenizer)
    with torch.no_grad():
        (out_a, mask_a), (out_b, mask_b) = side(bert, batch, "a"), side(bert, batch, "b")
        u, v = mean_pool(out_a["last_hidden_state"], mask_a), mean_pool(
            out_b["last_hidden_state"], mask_b)
        (linear,) = [m for m in model.heads["sts"].modules() if isinstance(m, torch.nn.Linear)]
        expected = 5 * torch.sigmoid(torch.cat([u, v], -1) @ linear.weight.T + linear.bias)
        assert torch.allclose(model(batch), expected.squeeze(-1), atol=1e-5)


def test_pals_gradvac_recipe_scores_sts_as_5_relu_cosine_of_pooler_outputs(synthetic_dir):
    bert, tokenizer = load_backbone("tiny", seed=0)  # its own: PALs hook into the backbone
    config = replace(RECIPES["pals_gradvac"], backbone="tiny", pals={"size": 18, "num_heads": 6})
    model = build_model(bert, config).eval()
    batch = sts_batch(synthetic_dir, tokenizer)
    with torch.no_grad(), model.pals.use("sts"):
        (out_a, _), (out_b, _) = side(bert, batch, "a"), side(bert, batch, "b")
        cos = F.cosine_similarity(out_a["pooler_output"], out_b["pooler_output"], dim=-1)
    with torch.no_grad():
        assert torch.allclose(model(batch), 5 * cos.relu(), atol=1e-5)
    assert RECIPES["pals_gradvac"].pals.options == {"size": 102, "num_heads": 6}  # 204*384/768


def test_optimusbert_recipes_raise_the_heads_dropout_alone_and_use_the_reports_mnrl():
    names = [n for n in RECIPES if n.startswith("optimusbert_")]
    assert len(names) == 3
    for name in names:
        config = RECIPES[name]
        assert config.head_dropout == 0.43 and config.dropout_schedule is None
        assert config.losses["sts"].name == "huber"
    for name in names:
        model = tiny_model(name)
        [ranking] = model.aux_losses["sts"]
        assert ranking.negatives == "batch"  # every other sentence of the batch
        cosine = name == "optimusbert_pcgrad_sts_cosine"
        assert isinstance(ranking.positives,
                          EmbeddingCosineThreshold if cosine else LabelThreshold)
        heads = {m.p for m in model.heads.modules() if isinstance(m, torch.nn.Dropout)}
        backbone = {m.p for m in model.bert.modules() if isinstance(m, torch.nn.Dropout)}
        assert heads == {0.43} and backbone == {0.1}


def test_kehoe_ravella_recipes_pair_methods_as_the_report_did():
    recipes = {n: c for n, c in RECIPES.items() if n.startswith("kehoe_ravella")}
    assert set(recipes) == {"kehoe_ravella_round_robin-sum", "kehoe_ravella_round_robin-pcgrad",
                            "kehoe_ravella_round_robin-gradvac", "kehoe_ravella_sequential",
                            "kehoe_ravella_smart_gradvac", "kehoe_ravella_warmup_gradvac",
                            "kehoe_ravella_accumulation"}
    sizes = {"sst": 8000, "quora": 14214, "sts": 5500}
    for name, config in recipes.items():
        assert config.pair_encoding == "cross"
        assert config.sampler_options["epoch_length"] == "sts"  # epochs sized to STS
        sampler = get_sampler(config.sampler, sizes, config.batch_size, **config.sampler_options)
        warmup = config.sampler_options.get("warmup_epochs", 0)
        steps = sampler.steps_per_epoch(warmup)  # the first multitask epoch
        per_task = steps if config.sampler == "round-robin" else steps // 3
        assert per_task == -(-sizes["sts"] // config.batch_size)
        smart = name == "kehoe_ravella_smart_gradvac"
        # the paraphrase warm-up (5 epochs) belongs to SMART + GradVac, and to the same recipe
        # without SMART that measures what each adds; SMART to SMART + GradVac alone
        warmed = smart or name == "kehoe_ravella_warmup_gradvac"
        assert warmup == (5 if warmed else 0)
        assert config.epochs == warmup + 3
        if warmed:
            assert sampler.tasks_for_step(0) == ["quora"]
        assert bool(config.aux_losses) == smart
        assert (config.accumulation_steps > 1) == (name == "kehoe_ravella_accumulation")
        if config.accumulation_steps > 1 or warmed:
            assert config.combiner == "gradvac"
        if config.combiner == "gradvac":  # the reports' GradVac code moves a target only
            assert config.combiner_options == {"target_update": "on-intervention"}  # when used
    model = tiny_model("kehoe_ravella_smart_gradvac")
    assert model.smart_placement == "after-combining"
    for task, terms in model.smart_terms.items():
        assert {type(t) for t in terms} == {SmoothnessRegulariser, BregmanProximalPoint}, task
        assert model.loss_terms[task] == []  # kept out of the gradients GradVac combines
