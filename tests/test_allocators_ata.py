"""ATA (Alg. 1): hand-worked Eq. 3 / Eq. 4, the released facts case by case, properties, errors."""


import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from repo_scripts import load_script

from tempo_kit.allocators import ATAAllocator
from tempo_kit.errors import ConfigError
from tempo_kit.registry import ALLOCATORS

bench_ata = load_script("benchmarks/bench_ata.py")

RELEASED, EXACT = ATAAllocator("released"), ATAAllocator("exact")


def counts(alloc, scores, k_max, budget, k_min):
    return alloc(torch.tensor(scores, dtype=torch.float64), k_max, budget, k_min).tolist()


# --- hand-worked equations -------------------------------------------------------------------


def test_eq3_when_ideal_allocation_fits():
    # s = [0.1, 0.5, 0.9] (float32), k_min = 2, k_max = 10, B = 100; released: no ε
    # ŝ = (s − 0.1) / 0.8 = [0, 0.5, 1] → Eq. 3: k = 2 + ⌊8·ŝ⌋ = [2, 6, 10]: the top gets k_max
    # Σk = 18 ≤ 100, so Alg. 1 adopts Eq. 3 and leaves 82 tokens unused (the paper's sparsity).
    assert counts(RELEASED, [0.1, 0.5, 0.9], 10, 100, 2) == [2, 6, 10]


def test_released_binary_scores_give_top_exactly_k_max():
    # s ∈ {0, 1}: ŝ = s, Eq. 3 = [4, 128, 4, 128], Σ = 264 ≤ 1000 → the relevant ones get k_max
    assert counts(RELEASED, [0.0, 1.0, 0.0, 1.0], 128, 1000, 4) == [4, 128, 4, 128]


def test_released_near_ties_spread_fully():
    # s = [0.5, 0.5 + 1e-6, 0.5 + 2e-6]: range 2e-6 ≥ 1e-8, so not "all equal"; float32 keeps
    # the three apart (ulp at 0.5 is 6e-8). ŝ = [0, ½, 1] up to float32 → Eq. 3 = 4 + ⌊124·ŝ⌋.
    # With an ε of 1e-6 in the denominator ŝ would be [0, ⅓, ⅔] and the top would get 86.
    k = counts(RELEASED, [0.5, 0.5 + 1e-6, 0.5 + 2e-6], 128, 1000, 4)
    assert k[0] == 4 and k[2] == 128 and 64 <= k[1] <= 66


def test_released_tied_below_1e_8_is_all_equal():
    # range 5e-9 < 1e-8 → every segment gets min(k_max, B // N) = 100 // 2 = 50
    assert counts(RELEASED, [0.25, 0.25 + 5e-9], 128, 100, 4) == [50, 50]


def test_eq4_when_ideal_allocation_exceeds_budget():
    # s = [0, 0.5, 1], k_min = 2, k_max = 10, B = 12, N = 3
    # ŝ = [0, 0.5, 1]; Eq. 3 gives [2, 6, 10], Σ = 18 > 12 → Eq. 4
    # B_res = 12 − 6 = 6, weights ŝ/Σŝ = [0, 1/3, 2/3] → 6·w = [0, 2, 4] (float32: 1.9999999,
    # 4.0 or exact) → k = [2, 4, 6] after the remainder goes to the highest weights
    assert counts(RELEASED, [0.0, 0.5, 1.0], 10, 12, 2) == [2, 4, 6]
    # exact mode: λ = 6 / Σŝ splits B_res exactly 2 : 4 → the same counts
    assert counts(EXACT, [0.0, 0.5, 1.0], 10, 12, 2) == [2, 4, 6]


def test_exact_water_fills_what_eq3_leaves():
    # Same scores as the Eq. 3 example, B = 20: released keeps Eq. 3's [2, 6, 10] (Σ = 18).
    # exact spends B_res = 20 − 6 = 14 over cap = 8 per segment: λ = 14/Σŝ would give the top
    # segment 9.33 > 8, so it saturates at 8; the other positive segment takes 14 − 8 = 6.
    # k = 2 + [0, 6, 8] = [2, 8, 10], Σ = 20 = B.
    assert counts(RELEASED, [0.1, 0.5, 0.9], 10, 20, 2) == [2, 6, 10]
    assert counts(EXACT, [0.1, 0.5, 0.9], 10, 20, 2) == [2, 8, 10]
    # B = 100 ≥ N·k_max: every segment saturates, even the lowest (what is left after the
    # informative segments are full is shared by the minimum-score ones).
    assert counts(EXACT, [0.1, 0.5, 0.9], 10, 100, 2) == [10, 10, 10]


# --- released facts, case by case ------------------------------------------------------------


def test_released_fallback_lowers_k_min():
    # N·k_min = 4·4 = 16 > B = 10 → k_min = max(1, 10 // 4) = 2
    # ŝ = [0, 1/3, 2/3, 1] → Eq. 3 = 2 + ⌊6·ŝ⌋ = [2, 4, 6, 8], Σ = 20 > 10 → Eq. 4
    # B_res = 10 − 8 = 2; weights ŝ/Σŝ = [0, 1/6, 2/6, 3/6] → 2·w = [0, 0.33, 0.67, 1.0]
    # → floors [0, 0, 0, 1] → [2, 2, 2, 3], remainder 1 → the highest weight (idx 3) → [2, 2, 2, 4]
    # (with an ε the top's 1.0 would fall to 0.99… and the remainder 2 would give [2, 2, 3, 3])
    assert counts(RELEASED, [0.0, 1.0, 2.0, 3.0], 8, 10, 4) == [2, 2, 2, 4]


def test_released_equal_scores_get_b_over_n():
    # all equal → min(k_max, B // N): 23 // 5 = 4 each, 3 tokens unused
    assert counts(RELEASED, [0.7] * 5, 8, 23, 4) == [4] * 5
    assert counts(RELEASED, [0.7] * 5, 8, 100, 4) == [8] * 5  # capped at k_max
    assert RELEASED(None, 8, 23, 4, num_segments=5).tolist() == [4] * 5  # None = equal scores


def test_released_clamp_is_inert_in_eq4():
    # Eq. 4 runs only when Σ⌊(k_max − k_min)ŝ⌋ > B_res, which makes B_res·ŝᵢ/Σŝ < (k_max − k_min)·ŝᵢ:
    # no segment can exceed k_max, so the final clamp cuts nothing and Eq. 4 spends all of B.
    # ŝ = [0, 0.01, 0.02, 1] → Eq. 3 = [4, 5, 6, 128], Σ = 143 > 100 → Eq. 4 with B_res = 84,
    # Σŝ = 1.03: 84·ŝ/1.03 = [0, 0.82, 1.63, 81.55] → floors [0, 0, 1, 81], remainder 2 → idx 3 and 2
    # → k = 4 + [0, 0, 2, 82] = [4, 4, 6, 86]: even the dominant segment stays far below k_max.
    k = counts(RELEASED, [0.0, 0.01, 0.02, 1.0], 128, 100, 4)
    assert k == [4, 4, 6, 86] and sum(k) == 100


def test_budget_below_segment_count():
    scores = [0.2, 0.9, 0.5, 0.1, 0.7]
    # N·k_min = 20 > B = 2 and B < N: the released code would give every segment 1 token (Σ = 5 > B).
    # Both modes keep the B = 2 highest-scoring segments (idx 1 and 4) with 1 token each.
    assert counts(RELEASED, scores, 128, 2, 4) == [0, 1, 0, 0, 1]
    assert counts(EXACT, scores, 128, 2, 4) == [0, 1, 0, 0, 1]
    # all equal: released gives min(k_max, 2 // 5) = 0 everywhere, as released;
    # exact spreads the 2 tokens evenly over time: bins of 2.5 → centres 1 and 3.
    assert counts(RELEASED, [0.5] * 5, 128, 2, 4) == [0] * 5
    assert counts(EXACT, [0.5] * 5, 128, 2, 4) == [0, 1, 0, 1, 0]
    assert EXACT(None, 128, 0, 4, num_segments=3).tolist() == [0, 0, 0]


def test_no_segments():
    for alloc in (RELEASED, EXACT):
        assert alloc(torch.zeros(0), 128, 100, 4).shape == (0,)
        assert alloc(None, 128, 100, 4, num_segments=0).dtype == torch.long


def test_registry_builds_modes():
    assert ALLOCATORS.build({"name": "ata", "mode": "exact"}).mode == "exact"
    assert ALLOCATORS.build("ata").mode == "released"


# --- properties ------------------------------------------------------------------------------


@st.composite
def allocation_cases(draw):
    n = draw(st.integers(1, 48))
    pool = draw(st.lists(st.floats(0, 1, allow_subnormal=False), min_size=1, max_size=6))
    if draw(st.booleans()):  # few distinct values: ties and all-equal cases
        scores = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    else:
        scores = draw(st.lists(st.floats(-5, 5, allow_subnormal=False), min_size=n, max_size=n))
    k_max = draw(st.integers(1, 160))
    k_min = draw(st.integers(0, min(k_max, 8)))
    budget = draw(st.integers(0, n * k_max + 50))
    return scores, k_max, budget, k_min


def check_properties(alloc, scores, k_max, budget, k_min):
    s = torch.tensor(scores, dtype=torch.float64)
    k = alloc(s, k_max, budget, k_min)
    n = len(scores)
    assert k.dtype == torch.long and k.shape == (n,)
    assert int(k.sum()) <= budget
    assert int(k.min()) >= 0 and int(k.max()) <= k_max
    if n * k_min <= budget:
        assert int(k.min()) >= k_min
    higher_but_fewer = (s[:, None] > s[None, :]) & (k[:, None] < k[None, :])
    assert not bool(higher_but_fewer.any()), "a higher score got fewer tokens"
    equal = all(x == scores[0] for x in scores)
    if equal and (alloc.mode == "released" or budget >= n):
        assert len(set(k.tolist())) == 1
    return k, equal


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(allocation_cases())
def test_released_properties_and_loop(case):
    scores, k_max, budget, k_min = case
    # the released mode works on float32 scores: values equal in float32 are ties
    scores = torch.tensor(scores, dtype=torch.float32).double().tolist()
    k, _ = check_properties(RELEASED, scores, k_max, budget, k_min)
    assert k.tolist() == bench_ata.released_loop(scores, k_max, budget, k_min)
    n = len(scores)
    eff_k_min = k_min if n * k_min <= budget else max(1, budget // n)
    s32 = torch.tensor(scores, dtype=torch.float32)
    spread = float(s32.max() - s32.min()) >= 1e-8
    if spread and budget >= eff_k_min * n:
        # the top segment gets exactly k_max under Eq. 3 (no ε); only Eq. 4 can lower it
        s_hat = (s32 - s32.min()) / (s32.max() - s32.min())  # ŝ first, as released (ŝ_top = 1 exactly)
        ideal = eff_k_min + torch.floor((k_max - eff_k_min) * s_hat)
        if int(ideal.sum()) <= budget:
            assert int(k.max()) == k_max
        elif budget >= n:
            assert int(k.sum()) == budget  # Eq. 4 spends the whole budget: the clamp never cuts


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(allocation_cases())
def test_exact_properties_and_loop(case):
    scores, k_max, budget, k_min = case
    k, equal = check_properties(EXACT, scores, k_max, budget, k_min)
    assert k.tolist() == bench_ata.exact_loop(scores, k_max, budget, k_min)
    n = len(scores)
    if not equal:
        assert int(k.sum()) == min(budget, n * k_max)
    elif budget < n:
        assert int(k.sum()) == budget


def test_subnormal_score_still_gets_its_share_of_the_budget():
    # four saturate at 8 (32 tokens); the subnormal score is the only one left with ŝ > 0, so it
    # takes the remaining 4. λ = 4 / 2.2e-308 overflows; λ·ŝ computed as 4 · (ŝ / Σŝ) does not.
    scores = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 2.2250738585072014e-308], dtype=torch.float64)
    assert EXACT(scores, 8, 36, 0).tolist() == [0, 8, 8, 8, 8, 4]
    assert bench_ata.exact_loop(scores.tolist(), 8, 36, 0) == [0, 8, 8, 8, 8, 4]


def test_huge_score_range_is_rescaled_not_nan():
    # max − min overflows to inf; dividing by 1e308 first gives ŝ ≈ [0, 1/2, 1) as for [−1, 0, 1]
    assert counts(RELEASED, [-1e308, 0.0, 1e308], 10, 100, 2) == counts(
        RELEASED, [-1.0, 0.0, 1.0], 10, 100, 2
    )
    assert counts(EXACT, [-1e308, 0.0, 1e308], 10, 15, 2) == [2, 5, 8]


def test_output_follows_relevance_device_and_ignores_grad():
    s = torch.rand(6, requires_grad=True)
    k = RELEASED(s, 16, 40, 2)
    assert k.device == s.device and not k.requires_grad


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.rand(3), 0, 10, 0), {}, "k_max=0 must be at least 1"),
        ((torch.rand(3), 8, 10, 9), {}, "k_min=9 exceeds k_max=8"),
        ((torch.rand(3), 8, 10, -1), {}, "k_min=-1 must be ≥ 0"),
        ((torch.rand(3), 8, -5, 0), {}, "budget=-5 must be ≥ 0"),
        ((torch.tensor([0.1, float("nan")]), 8, 10, 0), {}, r"relevance\[1\] = nan is not a finite"),
        ((torch.rand(2, 3), 8, 10, 0), {}, r"must be 1-D \[S\].*got shape \(2, 3\)"),
        ((None, 8, 10, 0), {}, "pass num_segments=S"),
        ((torch.rand(3), 8, 10.5, 0), {}, "budget must be an integer, got 10.5"),
        ((torch.rand(3), 8, 10, 0), {"num_segments": 4}, "num_segments=4 disagrees"),
    ],
)
def test_bad_inputs_raise_config_error(args, kwargs, message):
    for alloc in (RELEASED, EXACT):
        with pytest.raises(ConfigError, match=message):
            alloc(*args, **kwargs)


def test_bad_mode_suggests():
    with pytest.raises(ConfigError, match=r"^ata: mode='exakt' \(did you mean 'exact'\?\): use one of released, exact$"):
        ATAAllocator(mode="exakt")
    with pytest.raises(ConfigError, match="eps=0"):
        ATAAllocator(eps=0)
