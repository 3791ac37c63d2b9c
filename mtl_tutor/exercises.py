"""Checkers for the notebooks' exercises: each computes the true answer from the library, prints
what is right or wrong about the student's answer, and returns True when it is right.

>>> check_overall_score({"sst_acc": 0.5, "para_acc": 0.8, "sts_pearson": 0.6}, 0.7)
Right: the overall score = 0.7000.
True

A checker never raises on a wrong answer (a wrong shape or type is a wrong answer, and the
message says so); it raises ValueError only when its own inputs, which the notebook provides,
are malformed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .bert.sequences import PaddedSequences
from .combiners import get_combiner
from .data.sampling import get_sampler
from .evaluate import overall_score
from .heads import build_head
from .losses import multiple_negatives_ranking_loss, symmetric_kl
from .optim import AdamW
from .pals import TaskPAL
from .run_log import StepRecord, changed_steps, conflict_fraction, step_records

TOLERANCE = 1e-4  # relative, for answers computed in float32 by the student


def _verdict(right: bool, message: str) -> bool:
    print(("Right: " if right else "Not yet: ") + message)
    return right


def _unanswered(answer) -> bool:
    """True (after saying so) while the notebook's ``answer = None`` is still in place."""
    if answer is None:
        print("No answer yet: replace `answer = None` with your answer and run the cell again.")
        return True
    return False


def _as_array(answer) -> np.ndarray | None:
    """The answer as a float64 array, or None when it cannot be one."""
    try:
        if isinstance(answer, Tensor):
            answer = answer.detach().cpu()
        return np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _compare_arrays(truth, answer, what: str) -> bool:
    """Shape first, then values to ``TOLERANCE`` relative to the truth's largest entry."""
    truth = np.asarray(truth.detach().cpu() if isinstance(truth, Tensor) else truth, np.float64)
    given = _as_array(answer)
    if given is None:
        return _verdict(False, f"{what} must be an array or tensor of numbers, "
                               f"got {type(answer).__name__}.")
    if given.shape != truth.shape:
        return _verdict(False, f"{what}: the shape must be {truth.shape}, got {given.shape}.")
    error = float(np.abs(given - truth).max()) if truth.size else 0.0
    scale = max(float(np.abs(truth).max()) if truth.size else 0.0, 1e-12)
    if not np.isfinite(given).all() or error > TOLERANCE * scale:
        return _verdict(False, f"{what}: the shape {truth.shape} is right, the values differ by "
                               f"up to {error:.3g} (largest true entry {scale:.3g}).")
    return _verdict(True, f"{what}: correct to {error:.1e}.")


def _compare_number(truth: float, answer, what: str, tolerance: float = TOLERANCE) -> bool:
    if isinstance(answer, bool) or not isinstance(answer, int | float | np.number | Tensor):
        return _verdict(False, f"{what} must be a number, got {type(answer).__name__}.")
    given = float(answer)
    if not math.isclose(given, truth, rel_tol=tolerance, abs_tol=tolerance):
        return _verdict(False, f"{what} is {given:.4f}; recompute it.")
    return _verdict(True, f"{what} = {truth:.4f}.")


# ---- 00: the overall score and the gradient matrix ------------------------------------------
def check_overall_score(metrics: dict[str, float], answer: float) -> bool:
    """Exercise 00: the CS224N overall score of ``metrics`` (sst_acc, para_acc, sts_pearson)."""
    if _unanswered(answer):
        return False
    truth = overall_score(metrics)
    if _compare_number(truth, answer, "the overall score"):
        return True
    print("  Hint: STS Pearson r lies in [-1, 1]; the score maps it to [0, 1] first, then "
          "averages it with the two accuracies.")
    return False


def check_gradient_matrix_shape(model, tasks: Sequence[str], answer) -> bool:
    """Exercise 00: the shape (K, P) of ``G`` for ``model`` trained on ``tasks``."""
    if _unanswered(answer):
        return False
    truth = (len(tasks), sum(p.numel() for p in model.shared_parameters()))
    try:
        given = tuple(int(x) for x in answer)
    except (TypeError, ValueError):
        return _verdict(False, f"give the shape as a pair (K, P), got {answer!r}.")
    if given == truth:
        return _verdict(True, f"G is {truth[0]} x {truth[1]:,}: one row per task, one column per "
                              "shared (backbone) parameter; the heads are not in it.")
    hints = []
    if len(given) != 2:
        hints.append("G has exactly two dimensions")
    elif given[0] != truth[0]:
        hints.append("K is the number of tasks in the step")
    elif given[1] != truth[1]:
        hints.append("P counts the backbone's parameters only (model.shared_parameters()); "
                     "the task heads keep their own gradients")
    return _verdict(False, f"{given} is not the shape of G: " + "; ".join(hints) + ".")


# ---- 01: attention and AdamW -----------------------------------------------------------------
def check_attention(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, answer) -> bool:
    """Exercise 01: softmax(Q K^T / sqrt(hs), masked) V for q, k, v of shape (B, nh, T, hs) and a
    boolean ``key_mask`` (B, T), True at real tokens; the answer has shape (B, nh, T, hs)."""
    if _unanswered(answer):
        return False
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share a (B, nh, T, hs) shape, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    mask = None if key_mask is None else key_mask.bool()[:, None, None, :]  # (B, 1, 1, T)
    qkv = torch.stack([q, k, v], dim=2).transpose(1, 3)  # (B, T, 3, nh, hs)
    truth = PaddedSequences(mask).attend(qkv, 0.0).transpose(1, 2)  # (B, nh, T, hs)
    right = _compare_arrays(truth, answer, "your attention output")
    if not right:
        print("  Hint: scale by 1 / sqrt(hs), set the scores of padding keys to -inf before "
              "the softmax over the last (key) dimension, then multiply by V.")
    return right


def check_adamw_step(param: Tensor, grad: Tensor, answer, *, lr: float = 1e-3,
                     betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                     weight_decay: float = 0.0) -> bool:
    """Exercise 01: the parameter after AdamW's first step from fresh state (m = v = 0)."""
    if _unanswered(answer):
        return False
    p = param.detach().clone().double().requires_grad_(True)
    p.grad = grad.detach().clone().double()
    AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay).step()
    right = _compare_arrays(p.detach(), answer, "your updated parameter")
    if not right:
        print("  Hint: at t = 1, m = (1 - beta1) g and v = (1 - beta2) g^2; the step size is "
              "lr sqrt(1 - beta2) / (1 - beta1), eps is added to sqrt(v), and the decay "
              "p <- p - lr * weight_decay * p comes after the Adam step.")
    return right


# ---- 02: heads and sampling -----------------------------------------------------------------
def check_cosine_similarity_score(u: Tensor, v: Tensor, answer) -> bool:
    """Exercise 02: the STS score of the cosine head, 5 relu(cos(u, v)), for each pair of rows."""
    if _unanswered(answer):
        return False
    head = build_head("cosine", u.shape[-1], 1)
    with torch.no_grad():
        truth = head(u, v)
    right = _compare_arrays(truth, answer, "your similarity scores")
    if not right:
        print("  Hint: cos(u, v) = <u, v> / (|u| |v|) per row; negative cosines score 0; "
              "the scale 5 maps cosine 1 to the top of the STS range.")
    return right


def check_annealed_probabilities(task_sizes: dict[str, int], epoch: int, epochs: int,
                                 answer) -> bool:
    """Exercise 02: annealed sampling's task probabilities in 0-based ``epoch`` of ``epochs``."""
    if _unanswered(answer):
        return False
    sampler = get_sampler("annealed", task_sizes, 1, epochs=epochs)
    right = _compare_arrays(sampler.probabilities(epoch), answer,
                            f"your probabilities for epoch {epoch}")
    if not right:
        print(f"  Hint: alpha = 1 - 0.8 (e - 1) / (E - 1) with e = epoch + 1 = {epoch + 1} and "
              f"E = {epochs}; p_k = N_k^alpha / sum_j N_j^alpha, in the order {list(task_sizes)}.")
    return right


# ---- 03 and 04: PCGrad, conflict statistics, GradVac ----------------------------------------
def check_pcgrad_direction(G: Tensor, answer) -> bool:
    """Exercise 03: PCGrad's direction for two task gradients ``G`` [2, P]."""
    if _unanswered(answer):
        return False
    if G.dim() != 2 or G.shape[0] != 2:
        raise ValueError(f"G must hold two task gradients [2, P], got {tuple(G.shape)}")
    truth = get_combiner("pcgrad")(G.double(), torch.ones(2, dtype=torch.float64))
    right = _compare_arrays(truth, answer, "your PCGrad direction")
    if not right:
        print("  Hint: project each gradient off the other only when their inner product is "
              "negative: g_i - min(0, <g_i, g_j>) / |g_j|^2 g_j, then add the two results.")
    return right


def check_conflict_fraction(records: Sequence[StepRecord | dict], answer) -> bool:
    """Exercise 03: the fraction of logged steps where some pair of task gradients conflicts
    (records: StepRecords or the dictionaries of log.jsonl's lines)."""
    if _unanswered(answer):
        return False
    with_cosines = [r for r in step_records(records) if r.has_pairs]
    if not with_cosines:
        raise ValueError("records carry no 'cosines'; pass the records of a gradient combiner run")
    right = _compare_number(conflict_fraction(with_cosines), answer, "the conflict fraction")
    if not right:
        print(f"  Hint: count the {len(with_cosines)} steps in which at least one of "
              f"{list(with_cosines[0].cosines)} is negative, then divide by the step count.")
    return right


def gradvac_direction(G: Tensor, target: float) -> Tensor:
    """GradVac's direction for ``G`` [K, P] when every pairwise target cosine is ``target``."""
    combiner = get_combiner("gradvac", initial_target=float(target))
    return combiner(G.double(), torch.ones(G.shape[0], dtype=torch.float64))


def check_gradvac_direction(G: Tensor, target: float, answer) -> bool:
    """Exercise 04: GradVac's direction for two gradients ``G`` [2, P] and target cosine
    ``target`` (the same for both pairs)."""
    if _unanswered(answer):
        return False
    if G.dim() != 2 or G.shape[0] != 2:
        raise ValueError(f"G must hold two task gradients [2, P], got {tuple(G.shape)}")
    if not -1.0 < target < 1.0:
        raise ValueError(f"target must lie in (-1, 1), got {target!r}")
    right = _compare_arrays(gradvac_direction(G, target), answer, "your GradVac direction")
    if not right:
        print("  Hint: correct g_i only when cos(g_i, g_j) < target, by adding "
              "|g_i| (t sqrt(1 - phi^2) - phi sqrt(1 - t^2)) / (|g_j| sqrt(1 - t^2)) g_j; "
              "each g_i is corrected against the original g_j; then add the two.")
    return right


def check_intervention_count(records: Sequence[StepRecord | dict], answer, *,
                             threshold: float = 1e-6) -> bool:
    """Exercise 04: in how many logged steps the combiner changed the summed gradient, i.e. the
    record's ``changed`` = |d - sum_k g_k| / |sum_k g_k| exceeds ``threshold``."""
    if _unanswered(answer):
        return False
    records = step_records(records)
    truth, logged = changed_steps(records, threshold)
    if logged != len(records):
        raise ValueError("records carry no 'changed'; pass the records of a gradient combiner run")
    if isinstance(answer, bool) or not isinstance(answer, int | np.integer):
        return _verdict(False, f"the count must be an integer, got {type(answer).__name__}.")
    if answer == truth:
        return _verdict(True, f"the combiner changed the direction in {truth} of "
                              f"{len(records)} steps.")
    return _verdict(False, f"{answer} is not the number of steps with 'changed' > {threshold:g}.")


# ---- 05: GradAttention -----------------------------------------------------------------------
def check_gradattention_direction(combiner, G: Tensor, answer) -> bool:
    """Exercise 05: the direction with ``alpha`` the combiner's current attention weights over
    the rows of ``G`` (read without training the combiner): ``d = alpha @ G`` on the subset
    ``combiner.coordinates`` of its last call and zero elsewhere in "report" mode, ``alpha @ G``
    in the other modes."""
    if _unanswered(answer):
        return False
    with torch.no_grad():
        alpha = combiner.attention(combiner.tokens(G)).to(G.dtype)
    if combiner.mode == "report":
        truth = torch.zeros_like(G[0])
        truth[combiner.coordinates] = alpha @ G[:, combiner.coordinates]
    else:
        truth = alpha @ G
    right = _compare_arrays(truth, answer, "your GradAttention direction")
    if not right:
        print("  Hint: alpha = combiner.attention(combiner.tokens(G)) sums to 1 over the tasks; "
              "d weights each task gradient by its alpha, on the coordinates "
              "combiner.coordinates only in the report's mode.")
    return right


# ---- 06: PALs --------------------------------------------------------------------------------
def check_pal_parameter_count(hidden_size: int, size: int, num_heads: int, num_layers: int,
                              answer) -> bool:
    """Exercise 06: the parameters of one task's PALs: V^E (d_s x d_m) and V^D (d_m x d_s), each
    with a bias, and per layer a projected attention with a (3 d_s x d_s) QKV matrix and bias."""
    if _unanswered(answer):
        return False
    pal = TaskPAL(hidden_size, size, num_heads, num_layers, dropout=0.0)
    truth = sum(p.numel() for p in pal.parameters())
    if isinstance(answer, bool) or not isinstance(answer, int | np.integer):
        return _verdict(False, f"the count must be an integer, got {type(answer).__name__}.")
    if answer == truth:
        return _verdict(True, f"one task's PALs hold {truth:,} parameters.")
    shared = 2 * hidden_size * size + size + hidden_size
    return _verdict(False, f"{answer:,} is not the count. V^E and V^D with their biases hold "
                           f"{shared:,}; add the per-layer attention (weights and biases) for "
                           "every layer.")


# ---- 07 and 08: SMART and MNRL ---------------------------------------------------------------
def check_symmetric_kl(p_logits: Tensor, q_logits: Tensor, answer) -> bool:
    """Exercise 07: SMART's divergence for class logits, KL(p || q) + KL(q || p) of the two
    softmax distributions, averaged over the rows."""
    if _unanswered(answer):
        return False
    right = _compare_arrays(symmetric_kl(p_logits.double(), q_logits.double()), answer,
                            "your symmetric KL")
    if not right:
        print("  Hint: with p = softmax(p_logits), q = softmax(q_logits) per row, "
              "KL(p || q) + KL(q || p) = sum_c (p_c - q_c)(log p_c - log q_c); then the mean.")
    return right


def check_mnrl_loss(anchors: Tensor, positives: Tensor, answer, *, scale: float = 20.0) -> bool:
    """Exercise 08: the multiple negatives ranking loss of (anchor, positive) rows."""
    if _unanswered(answer):
        return False
    truth = multiple_negatives_ranking_loss(anchors.double(), positives.double(), scale)
    right = _compare_arrays(truth, answer, "your MNRL loss")
    if not right:
        print(f"  Hint: S_ij = {scale:g} cos(a_i, p_j); the loss is the cross-entropy of each row "
              "of S against its own column i (the true positive), averaged over rows.")
    return right


# ---- 09: the leaderboard ---------------------------------------------------------------------
def check_best_combiner(results: Sequence[dict], conflict: float, answer: str) -> bool:
    """Exercise 09: which combiner has the highest overall score at the given ``conflict``;
    ``results`` are dicts with ``name``, ``conflict`` and ``overall``."""
    if _unanswered(answer):
        return False
    rows = [r for r in results if math.isclose(r["conflict"], conflict)]
    if not rows:
        raise ValueError(f"no results at conflict {conflict}; have "
                         f"{sorted({r['conflict'] for r in results})}")
    best = max(rows, key=lambda r: r["overall"])
    if answer == best["name"]:
        return _verdict(True, f"{best['name']} leads at conflict {conflict:g} "
                              f"(overall {best['overall']:.4f}).")
    names = sorted(r["name"] for r in rows)
    if answer not in names:
        return _verdict(False, f"{answer!r} is not among the combiners run: {names}.")
    mine = next(r for r in rows if r["name"] == answer)
    return _verdict(False, f"{answer} scored {mine['overall']:.4f} at conflict {conflict:g}; "
                           "another combiner scored higher.")
