"""The leaderboard's files: every recipe in configs/ builds under every profile, the claims name
existing recipes, settings merge in the documented order, bad files are refused by name, runs
are selected and ordered (claims first), and a run's expected cost follows the cost model."""

import math
from dataclasses import replace
from pathlib import Path

import pytest

from mtl_tutor.combiners import COMBINER_NAMES
from mtl_tutor.data import get_sampler
from mtl_tutor.leaderboard import load_board
from mtl_tutor.leaderboard.claims import load_claims
from mtl_tutor.leaderboard.plan import estimate_seconds, run_shape, select_runs
from mtl_tutor.leaderboard.profiles import CostModel, load_profiles
from mtl_tutor.leaderboard.recipes import (
    apply_changes,
    load_all,
    load_recipes,
    merge_settings,
    recipe_files,
)
from mtl_tutor.leaderboard.records import config_differences, read_records

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "leaderboard"
SIZES = {"sst": 8000, "quora": 14212, "sts": 5500}  # training rows of the CS224N files


@pytest.fixture(scope="module")
def cpu_board():
    return load_board("cpu", [CONFIGS], check=True)  # every recipe's model built (tiny BERT)


def test_every_config_builds_and_every_combiner_is_on_the_board(cpu_board):
    names = [r.name for r in cpu_board.recipes]
    assert len(names) == len(set(names))
    assert all(r.config.backbone == "minilm-l6" for r in cpu_board.recipes)
    assert set(COMBINER_NAMES) <= {r.config.combiner for r in cpu_board.recipes}
    assert {p.name for p in recipe_files([CONFIGS])}.isdisjoint({"profiles.toml", "claims.toml"})
    cross = [r for r in cpu_board.recipes if r.name.startswith("cross_heads-")]
    assert all(r.config.pair_encoding == "cross" for r in cross) and len(cross) == 15
    gpu = load_board("gpu", [CONFIGS])
    assert [(r.recipe.name, r.seed) for r in gpu.runs if r.recipe.name == "baseline_sum"] == [
        ("baseline_sum", 0), ("baseline_sum", 1), ("baseline_sum", 2)]


@pytest.mark.parametrize("profile", ["cpu", "recipe"])
def test_every_committed_record_stands_for_its_recipe_as_configs_has_it_now(profile):
    """A recipe edited after its run would leave README and notebook 09 quoting a record of
    something else (and `mtl-tutor leaderboard` refusing to go on)."""
    runs = {(run.recipe.name, run.seed): run for run in load_board(profile, [CONFIGS]).runs}
    records = read_records(RESULTS, profile)
    assert records
    for key, record in records.items():
        assert key in runs, f"{profile}: a record of {key}, which the board does not plan"
        assert config_differences(record, runs[key].config) == [], key


def test_cpu_profile_sizes_every_epoch_to_sts_and_seeds_the_claims_twice(cpu_board):
    profile = cpu_board.profile
    assert profile.settings["epochs"] == 1
    compared = cpu_board.compared
    assert "baseline_sum" in compared and "kehoe_ravella_warmup_gradvac" in compared
    assert {c.recipe for c in load_claims(CONFIGS / "claims.toml") if c.kind != "bench"} \
        <= compared
    for run in cpu_board.runs:
        config = run.config
        seeds = [r.seed for r in cpu_board.runs if r.recipe is run.recipe]
        assert seeds == ([0, 1] if run.recipe.name in compared else [0])
        sampler = get_sampler(config.sampler, SIZES, config.batch_size,
                              **config.sampler_arguments())
        warmup = config.sampler_options.get("warmup_epochs", 0)
        assert config.epochs - warmup == 1, run.label  # the profile's multitask epoch
        tasks_per_step = 1 if config.sampler == "sequential" else 3
        steps = sampler.total_steps(config.epochs)
        sts_batches = math.ceil(SIZES["sts"] / config.batch_size)  # 172
        assert steps == sts_batches * (3 // tasks_per_step + warmup), run.label
    by_name = {r.recipe.name: r.config for r in cpu_board.runs}
    # the budget shrinks the reports' 5 paraphrase warm-up epochs to one sized to STS
    for name in ("kehoe_ravella_smart_gradvac", "kehoe_ravella_warmup_gradvac"):
        options = by_name[name].sampler_options
        assert options == {"epoch_length": "sts", "warmup_task": "quora", "warmup_epochs": 1,
                           "warmup_epoch_length": "sts"}
        recipe = next(r for r in cpu_board.recipes if r.name == name)
        assert recipe.config.epochs == 8  # the recipe itself keeps the report's budget
    for recipe in cpu_board.recipes:  # a recipe the budget changes says so
        for profile in recipe.profile_settings:
            assert f"{profile} profile" in recipe.description, recipe.name


def test_round_robin_gradvac_uses_the_reports_target_rule_pcgrad_gets_no_options():
    recipes = {r.name: r.config for r in load_recipes(CONFIGS / "kehoe_ravella_round_robin.toml")}
    assert recipes["kehoe_ravella_round_robin-gradvac"].combiner_options == {
        "target_update": "on-intervention"}
    assert recipes["kehoe_ravella_round_robin-pcgrad"].combiner_options == {}
    assert recipes["kehoe_ravella_round_robin-sum"].combiner_options == {}


def test_recipe_file_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "typo.toml"
    for body, message in [
        ("learning_rate = 1e-4", r"typo\.toml: unknown key 'learning_rate'"),
        ("seed = 3", r"typo\.toml: key 'seed' is set by the leaderboard"),
        ("seeds = [0]", r"typo\.toml: key 'seeds' is set by the profile"),
        ('pair_encoding = "both"', r"typo\.toml: pair_encoding must be"),
        ('combiners = ["sum", "pcgrad"]\ncombiner_options.gradvac = {beta = 0.1}',
         r"combiner_options names \['gradvac'\], not in combiners"),
        ('combiners = ["gradvac"]\ncombiner_options.gradvac = {beta = 2.0}',
         r"typo\.toml: combiner_options"),
        ('[profiles.cpu]\nlearning_rate = 1', r"typo\.toml \[profiles\.cpu\]: unknown key"),
    ]:
        path.write_text(f'name = "typo"\ndescription = "x"\n{body}\n')
        with pytest.raises(ValueError, match=message):
            load_recipes(path)


def test_per_combiner_options_go_to_their_combiner_alone(tmp_path):
    path = tmp_path / "many.toml"
    path.write_text('name = "many"\ndescription = "x"\ncombiners = ["sum", "gradvac"]\n'
                    'combiner_options.gradvac = {target_update = "on-intervention"}\n'
                    'epochs = 2\n')
    recipes = load_recipes(path)
    assert [(r.name, r.family, r.config.combiner, r.config.combiner_options, r.config.epochs)
            for r in recipes] == [
        ("many-sum", "many", "sum", {}, 2),
        ("many-gradvac", "many", "gradvac", {"target_update": "on-intervention"}, 2)]


def test_settings_merge_recipe_then_profile_then_its_profile_table_then_changes():
    recipe = {"epochs": 3, "sampler_options": {"epoch_length": "max", "task_order": "shuffled"},
              "heads": {"sts": {"name": "cosine", "scale": 5.0}}, "combiner": "gradvac",
              "combiner_options": {"beta": 0.1}}
    profile = {"epochs": 1, "sampler_options": {"epoch_length": "sts"}}
    merged = merge_settings(recipe, profile)
    assert merged["epochs"] == 1
    assert merged["sampler_options"] == {"epoch_length": "sts", "task_order": "shuffled"}
    assert merge_settings(merged, {"heads": {"sts": {"scale": 4.0}}})["heads"] == {
        "sts": {"name": "cosine", "scale": 4.0}}  # options of the same head merge
    assert merge_settings(merged, {"heads": {"sts": {"name": "pair-mlp"}}})["heads"] == {
        "sts": {"name": "pair-mlp"}}  # another head replaces the entry
    assert apply_changes(merged, {"combiner": "pcgrad"})["combiner"] == "pcgrad"
    assert "combiner_options" not in apply_changes(merged, {"combiner": "pcgrad"})
    assert apply_changes(merged, {"combiner": "gradvac"})["combiner_options"] == {"beta": 0.1}
    assert recipe["epochs"] == 3 and recipe["sampler_options"]["epoch_length"] == "max"


def write_board(tmp_path, profiles=None, claims=None):
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "base.toml").write_text('name = "base"\ndescription = "the sum"\n')
    (configs / "surgery.toml").write_text('name = "surgery"\ndescription = "x"\n'
                                          'combiners = ["pcgrad", "gradvac"]\n')
    (configs / "other.toml").write_text('name = "other"\ndescription = "x"\nlr = 1e-4\n'
                                        '[profiles.small]\nlr = 2e-4\n')
    (configs / "profiles.toml").write_text(profiles or (
        '[small]\ndescription = "tiny"\nseeds = [0, 1]\nother_seeds = [5]\n'
        '[small.settings]\nepochs = 2\n'
        '[small.cost]\nstep_seconds = 2.0\nevaluation_seconds = 10\nsetup_seconds = 5\n'))
    (configs / "claims.toml").write_text(claims or (
        '[[claim]]\nid = "c"\nreport = "R"\ntext = "PCGrad beats the sum"\nkind = "metric"\n'
        'recipe = "surgery-pcgrad"\nreference = "base"\nmetric = "overall"\nexpect = "higher"\n'
        'confirms = "x"\n'))
    return configs


def test_runs_come_claims_first_with_the_profiles_seeds_and_can_be_picked(tmp_path):
    configs = write_board(tmp_path)
    board = load_board("small", [configs], data="DATA", baseline="base")
    assert [(r.recipe.name, r.seed) for r in board.runs] == [
        ("base", 0), ("base", 1), ("surgery-pcgrad", 0), ("surgery-pcgrad", 1),
        ("other", 5), ("surgery-gradvac", 5)]
    run = board.runs[2]
    assert run.config.out == str(Path("runs/leaderboard/small/surgery-pcgrad/seed0"))
    assert run.record == Path("results/leaderboard/small/surgery-pcgrad/seed0.json")
    assert run.config.seed == 0 and run.config.data == "DATA" and run.config.epochs == 2
    assert next(r for r in board.runs if r.recipe.name == "other").config.lr == 2e-4

    def picked(only=(), seeds=()):
        return [(r.recipe.name, r.seed) for r in select_runs(board, only, seeds)]

    assert picked(["claims"]) == [("base", 0), ("base", 1), ("surgery-pcgrad", 0),
                                  ("surgery-pcgrad", 1)]
    assert picked(["others"]) == [("other", 5), ("surgery-gradvac", 5)]
    assert picked(["surgery"]) == [("surgery-pcgrad", 0), ("surgery-pcgrad", 1),
                                   ("surgery-gradvac", 5)]
    assert picked(["base", "other"], [1, 5]) == [("base", 1), ("other", 5)]
    with pytest.raises(ValueError, match="--only: 'bse' is no recipe"):
        picked(["bse"])
    with pytest.raises(ValueError, match="--baseline: no recipe 'nothing'"):
        load_board("small", [configs], baseline="nothing")
    with pytest.raises(ValueError, match="--profile: no profile 'cpu' in .*profiles.toml; "
                                         "profiles: small"):
        load_board("cpu", [configs], baseline="base")


@pytest.mark.parametrize("profile, message", [
    ('[p]\ndescription = "x"\nseeds = [0, 0]\n', r"\[p\]: seeds must be a non-empty list"),
    ('[p]\ndescription = "x"\nseeds = [-1]\n', r"\[p\]: seeds\[0\] must be an integer >= 0"),
    ('[p]\ndescription = "x"\nseeds = [0]\nepochs = 1\n', r"\[p\]: unknown key 'epochs'"),
    ('[p]\ndescription = "x"\nseeds = [0]\n[p.settings]\nseed = 1\n',
     r"\[p\] settings: key 'seed' is set by the leaderboard"),
    ('[p]\ndescription = "x"\nseeds = [0]\n[p.cost]\nstep_seconds = 1\n',
     r"\[p\]: cost must give exactly step_seconds, evaluation_seconds, setup_seconds"),
    ('[p]\ndescription = ""\nseeds = [0]\n', r"\[p\]: description must say"),
])
def test_a_bad_profile_is_refused_by_name(tmp_path, profile, message):
    path = tmp_path / "profiles.toml"
    path.write_text(profile)
    with pytest.raises(ValueError, match=message):
        load_profiles(path)


def test_a_recipe_table_for_an_unknown_profile_is_refused(tmp_path):
    configs = write_board(tmp_path)
    (configs / "other.toml").write_text('name = "other"\ndescription = "x"\n[profiles.big]\n'
                                        'lr = 2e-4\n')
    with pytest.raises(ValueError, match=r"other\.toml: \[profiles\.big\] names no profile"):
        load_board("small", [configs], baseline="base")


CLAIM = ('[[claim]]\nid = "c"\nreport = "R"\ntext = "t"\nconfirms = "x"\n'
         'recipe = "surgery-pcgrad"\n')


@pytest.mark.parametrize("body, message", [
    ('kind = "metric"\nreference = "base"\nmetric = "accuracy"\nexpect = "higher"',
     "metric of a metric claim must be one of sst_acc"),
    ('kind = "metric"\nreference = "base"\nmetric = "overall"\nexpect = "about"',
     "value is given exactly when"),
    ('kind = "metric"\nreference = "base"\nmetric = "overall"\nexpect = "better"',
     "expect must be one of higher, lower, about"),
    ('kind = "weights"\nmetric = "paraphrase"\nexpect = "higher"',
     "of a weights claim names the favoured task"),
    ('kind = "bench"\nreference = "sum"\nmetric = "step time ratio"\nexpect = "lower"',
     "a bench claim names its bench file"),
    ('kind = "metric"\nreference = "nothing"\nmetric = "overall"\nexpect = "higher"',
     "recipe 'nothing' is not among the recipes"),
    ('kind = "metric"\nreference = "base"\nmetric = "overall"\nexpect = "higher"\nsize = 1',
     "'size' is no claim key"),
])
def test_a_bad_claim_is_refused_naming_the_file_and_the_claim(tmp_path, body, message):
    configs = write_board(tmp_path, claims=CLAIM + body + "\n")
    with pytest.raises(ValueError, match=r"claims\.toml \(claim c\): .*" + message):
        load_board("small", [configs], baseline="base")


def test_every_claim_of_configs_names_recipes_that_exist():
    claims = load_claims(CONFIGS / "claims.toml")
    names = {r.name for r in load_all([CONFIGS])}
    assert len(claims) >= 10
    assert all(set(c.recipes) <= names for c in claims)
    assert {c.kind for c in claims} == {"metric", "weights", "bench"}


def test_expected_cost_follows_the_cost_model(tmp_path):
    configs = write_board(tmp_path)
    board = load_board("small", [configs], baseline="base")
    sizes = {"sst": 100, "quora": 70, "sts": 40}
    config = board.runs[0].config  # round-robin, epoch over the largest task: 4 steps, 2 epochs
    assert run_shape(config, sizes) == (8, 2, 3.0)
    cost = CostModel(step_seconds=2.0, evaluation_seconds=10.0, setup_seconds=5.0)
    assert estimate_seconds(config, sizes, cost, None) == 5 + 8 * 2.0 + (2 + 1) * 10
    assert estimate_seconds(config, sizes, cost, 1.5) == 5 + 8 * 2.0 * 1.5 + (2 + 1) * 10
    sequential = replace(config, sampler="sequential", sampler_options={}, max_steps=5,
                         eval_every=2)
    steps, evaluations, batches = run_shape(sequential, sizes)
    assert (steps, evaluations, batches) == (5, 1 + 2, 1.0)  # the end, and after steps 2 and 4
    expected = 5 + 5 * 2.0 / 3 + 4 * 10  # a step of one task: a third of the baseline's
    assert estimate_seconds(sequential, sizes, cost, None) == pytest.approx(expected)
