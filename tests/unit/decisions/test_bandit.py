"""Thompson sampling: configuration, posteriors, estimated propensities, the bandit
branch of decide, and which events count as trials and successes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

from engine.decisions.bandit import (
    DRAWS,
    OTHERS,
    Posterior,
    SlotBandit,
    parse_bandit,
    posterior,
    slot_posteriors,
)
from engine.decisions.decide import Models, decide
from engine.decisions.rules import Facts
from engine.decisions.segments import compile_segment
from engine.decisions.slots import compile_slot
from engine.decisions.tokens import DecisionToken, TokenSigner
from engine.events.outcomes import bandit_counts, visitors_token
from engine.store.keys import Keys
from models.events import Event

MOBILE = {"attr": "context.device", "op": "eq", "value": "mobile"}


def bandit_slot(**bandit: Any) -> Any:
    return compile_slot(
        "hero",
        {
            "variants": [{"id": v, "content": {}} for v in ("a", "b", "c")],
            "default": "a",
            "policy": "bandit",
            "rules": [{"when": MOBILE, "variant": "c"}],
            "bandit": {"segments": ["phones"], **bandit},
        },
    )


def test_config_defaults_and_segment_choice() -> None:
    config = parse_bandit({"segments": ["vip", "phones"]})
    assert (config.reward, config.window_s, config.prior) == ("click", 3600, (1.0, 1.0))
    assert config.segment_of(frozenset({"phones", "vip"})) == "vip"  # the first listed
    assert config.segment_of(frozenset({"phones"})) == "phones"
    assert config.segment_of(frozenset({"other"})) == OTHERS
    assert config.posteriors == ("vip", "phones", OTHERS)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "bandit: an object"),
        ({"segments": "vip"}, "bandit.segments"),
        ({"segments": [OTHERS]}, "bandit.segments"),
        ({"reward": "purchase"}, "bandit.reward"),
        ({"window_s": 86_401}, "bandit.window_s"),
        ({"window_s": True}, "bandit.window_s"),
        ({"prior": [1, -1]}, "bandit.prior"),
        ({"prior": [1]}, "bandit.prior"),
    ],
)
def test_bad_configs_say_what_is_wrong(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bandit(raw)


def exact_win_probability(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) for independent Beta variables, by quadrature."""
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2), 0, 1)
    return float(value)


def test_two_arm_propensities_match_the_exact_win_probability() -> None:
    rng = np.random.default_rng(3)
    post = posterior(np.array([40, 50]), np.array([8, 7]), (1.0, 1.0), rng)
    exact = exact_win_probability(9, 33, 8, 44)
    sigma = np.sqrt(exact * (1 - exact) / DRAWS)
    assert post.propensities[0] == pytest.approx(exact, abs=4 * sigma)
    assert post.propensities.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(post.alpha, [9, 8])
    np.testing.assert_allclose(post.beta, [33, 44])


def test_identical_posteriors_give_exactly_uniform_propensities() -> None:
    post = posterior(np.zeros(4, int), np.zeros(4, int), (1.0, 1.0), np.random.default_rng(0))
    np.testing.assert_array_equal(post.propensities, np.full(4, 0.25))


def test_thompson_draws_follow_the_estimated_propensities() -> None:
    post = posterior(
        np.array([30, 30, 30]), np.array([6, 9, 4]), (1.0, 1.0), np.random.default_rng(5)
    )
    rng = np.random.default_rng(9)
    picks = np.array([post.choose(rng)[0] for _ in range(6000)])
    observed = np.bincount(picks, minlength=3)
    result = stats.chisquare(observed, post.propensities * observed.sum())
    assert result.pvalue > 0.001
    assert post.choose(rng)[1] in set(post.propensities.tolist())


def test_an_arm_never_seen_winning_still_gets_a_positive_propensity() -> None:
    post = posterior(
        np.array([1000, 1000]), np.array([900, 10]), (1.0, 1.0), np.random.default_rng(1)
    )
    assert post.propensities[1] == 0.0
    # an estimate that says 0 for the arm that then wins: logged floored, never zero
    stale = Posterior(np.array([1.0, 100.0]), np.array([100.0, 1.0]), post.propensities)
    assert stale.choose(np.random.default_rng(2)) == (1, 0.5 / DRAWS)


def test_slot_posteriors_read_the_counter_hash() -> None:
    config = parse_bandit({"segments": ["phones"]})
    counters = {b"t:phones:a": b"10", b"s:phones:a": b"4", b"t:_:b": b"3", b"s:_:b": b"12"}
    posteriors = slot_posteriors(config, ("a", "b"), counters, np.random.default_rng(0))
    np.testing.assert_allclose(posteriors["phones"].alpha, [5, 1])
    np.testing.assert_allclose(posteriors["phones"].beta, [7, 1])
    # more successes than trials (a trial count lost): capped, never a negative beta
    np.testing.assert_allclose(posteriors[OTHERS].alpha, [1, 4])
    np.testing.assert_allclose(posteriors[OTHERS].beta, [1, 1])


def facts(device: str) -> Facts:
    return Facts(context={"device": device}, features={})


PHONES = compile_segment("phones", {"when": MOBILE})


def test_a_bandit_slot_without_posteriors_decides_by_its_rules() -> None:
    (decision,), _ = decide([bandit_slot()], [PHONES], facts("mobile"))
    assert (decision.variant.id, decision.policy, decision.propensity) == ("c", "rules", 1.0)


def test_a_bandit_slot_draws_from_the_visitors_segment() -> None:
    slot = bandit_slot()
    assert slot.bandit is not None
    rng = np.random.default_rng(0)
    counters = {f"t:{seg}:{v}".encode(): b"500" for seg in ("phones", OTHERS) for v in "abc"}
    counters |= {b"s:phones:b": b"250", b"s:_:a": b"250"}  # the others: no success in 500
    posteriors = slot_posteriors(slot.bandit, "abc", counters, rng)
    models = Models(
        bandits={"hero": SlotBandit(("a", "b", "c"), slot.bandit, counters, posteriors)}
    )
    (phone,), member_of = decide([slot], [PHONES], facts("mobile"), models, bandit_rng=rng)
    (desk,), _ = decide([slot], [PHONES], facts("desktop"), models, bandit_rng=rng)
    assert member_of == frozenset({"phones"})
    assert (phone.variant.id, phone.policy, phone.segment) == ("b", "bandit", "phones")
    assert (desk.variant.id, desk.segment) == ("a", OTHERS)
    assert phone.propensity_estimated
    assert phone.propensity > 0.99


def test_a_changed_definition_waits_for_its_own_posteriors() -> None:
    slot = bandit_slot()
    assert slot.bandit is not None
    old = SlotBandit(("a", "b"), slot.bandit, {}, {})  # built before variant c was added
    (decision,), _ = decide([slot], [PHONES], facts("desktop"), Models(bandits={"hero": old}))
    assert decision.policy == "rules"


SIGNER = TokenSigner(b"k" * 32)
KEYS = Keys("omo")
NOW = 1_700_000_000


def event(kind: str, token: DecisionToken | None, pid: str = "p1", age: float = 10) -> Event:
    return Event(
        type=kind,  # type: ignore[arg-type]
        pid=pid,
        ts=NOW + age,
        channel="web",
        token=SIGNER.sign(token) if token else None,
    )


def token(policy: str = "bandit", segment: str | None = "phones") -> DecisionToken:
    return DecisionToken("d1", "p1", "hero", "b", policy, 0.4, NOW, segment=segment)


def counted(e: Event, **bandit: Any) -> list[tuple[str, str, str]]:
    token = visitors_token(e, SIGNER)
    if token is None:
        return []
    counts = bandit_counts(e, token, {"hero": bandit_slot(**bandit)}, KEYS, e.ts)
    return [(c.marker, c.key, c.field) for c in counts]


def test_an_impression_is_a_trial_and_a_click_a_success_with_its_trial() -> None:
    assert counted(event("impression", token())) == [("d1.hero.t", "omo:bandit:hero", "t:phones:b")]
    assert counted(event("click", token())) == [
        ("d1.hero.t", "omo:bandit:hero", "t:phones:b"),
        ("d1.hero.s", "omo:bandit:hero", "s:phones:b"),
    ]


@pytest.mark.parametrize(
    ("e", "bandit"),
    [
        (event("click", None), {}),
        (event("page_view", token()), {}),
        (event("click", token(policy="rules", segment=None)), {}),
        (event("click", token(), pid="someone-else"), {}),
        (event("click", token(), age=3601), {}),
        (event("click", token()), {"reward": "conversion"}),
    ],
    ids=["no-token", "not-an-outcome", "not-a-bandit", "other-visitor", "too-late", "not-reward"],
)
def test_what_does_not_count(e: Event, bandit: dict[str, Any]) -> None:
    assert counted(e, **bandit) == []


def test_a_conversion_counts_when_it_is_the_reward() -> None:
    assert [m for m, _, _ in counted(event("conversion", token()), reward="conversion")] == [
        "d1.hero.t",
        "d1.hero.s",
    ]


def test_a_token_for_a_variant_no_longer_in_the_slot_does_not_count() -> None:
    stale = DecisionToken("d1", "p1", "hero", "gone", "bandit", 0.4, NOW, segment="phones")
    assert counted(event("click", stale)) == []


def test_a_replay_arriving_after_the_window_does_not_count_whatever_its_clock_says() -> None:
    late = event("click", token())  # its own time is 10 s after the decision
    slots = {"hero": bandit_slot()}
    token_ = visitors_token(late, SIGNER)
    assert token_ is not None
    assert bandit_counts(late, token_, slots, KEYS, late.ts)
    assert bandit_counts(late, token_, slots, KEYS, late.ts + 8 * 86_400) == []
