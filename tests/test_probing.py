"""Probe policies and the mentor-budget controller."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import generate

from edge_collab.engine.budget import MentorBudget
from edge_collab.engine.probe_policy import AuditPolicy, RandomProbePolicy, UncertaintyProbePolicy, step_signal
from edge_collab.verifiers import AlwaysMentor
from edge_collab.verifiers.base import Divergence, Verdict


def test_step_signal_entropy_and_margin():
    flat = step_signal(np.zeros(8, dtype=np.float32))
    assert flat.entropy == pytest.approx(math.log(8)) and flat.margin == pytest.approx(0.0)
    sharp = step_signal(np.array([10.0, 0.0, 0.0, 0.0], dtype=np.float32))
    assert sharp.entropy < 0.01 and sharp.margin > 0.99


def test_random_policy_rate_and_pressure():
    policy = RandomProbePolicy(0.25, np.random.default_rng(0))
    draws = [policy.should_probe(None, 0.0) for _ in range(4000)]
    assert 0.22 < sum(draws) / len(draws) < 0.28
    assert policy.level(math.log(2)) == pytest.approx(0.5)
    assert policy.level(10.0) == 1.0


def test_uncertainty_policy_threshold_and_pressure():
    policy = UncertaintyProbePolicy(1.0)
    assert policy.should_probe(step_signal(np.zeros(8, dtype=np.float32)), 0.0)  # entropy ln 8 > 1
    assert not policy.should_probe(step_signal(np.array([9.0, 0, 0, 0], dtype=np.float32)), 0.0)
    assert policy.level(math.log(2)) == pytest.approx(0.5)


def test_an_audit_batch_is_due_when_full_or_early_at_an_unsure_token():
    full_only = AuditPolicy(tokens=8, threshold=0.0)
    assert not full_only.due(7, least_probability=0.01) and full_only.due(8)
    early = AuditPolicy(tokens=8, threshold=0.0, unsure_below=0.5)
    assert early.due(1, least_probability=0.49) and not early.due(7, least_probability=0.5) and early.due(8)


@pytest.mark.parametrize("target", [0.18, 0.3])
def test_budget_controller_converges_on_a_simulated_process(target):
    """Adoptions of 16 tokens happen with a probability that grows with the probe rate."""
    budget = MentorBudget(target)
    policy = RandomProbePolicy(0.25, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    tokens = mentor = 0
    for step in range(6000):
        adopt = policy.should_probe(None, budget.pressure) and rng.random() < 0.3
        step_tokens, step_mentor = (16, 16) if adopt else (2, 0)
        budget.update(step_tokens, step_mentor)
        if step >= 3000:
            tokens += step_tokens
            mentor += step_mentor
    assert abs(mentor / tokens - target) < 0.03


def test_uncertainty_probing_on_tiny_models(student, mentor):
    always = generate(student, mentor, AlwaysMentor(), probe_policy="uncertainty", uncertainty_threshold=0.0)
    never = generate(student, mentor, AlwaysMentor(), probe_policy="uncertainty", uncertainty_threshold=20.0)
    assert always.stats.probes > 0 and never.stats.probes == 0
    assert never.stats.tokens_mentor == 0


def _budgeted_run(student, mentor, verifier, budget: MentorBudget, answers: int = 16):
    from engine_helpers import MESSAGES

    from edge_collab.engine.generation import start_generation
    from edge_collab.engine.local_mentor import LocalMentor
    from edge_collab.engine.result import Prompts
    from edge_collab.settings import GenerationSettings

    results = []
    for seed in range(answers):
        settings = GenerationSettings(max_new_tokens=80, seed=seed, mentor_budget=budget.target)
        prompts = Prompts(student.chat_prompt(MESSAGES), mentor.chat_prompt(MESSAGES))
        results.append(start_generation(student, LocalMentor(mentor), verifier, settings, prompts, budget).run())
    return results


def _share(results) -> float:
    return sum(r.stats.tokens_mentor for r in results) / sum(r.stats.tokens_total for r in results)


def test_budget_brings_the_mentor_share_down_to_the_target(student, mentor):
    free = [generate(student, mentor, AlwaysMentor(), seed=s, max_new_tokens=80) for s in range(3)]
    assert _share(free) > 0.5  # tiny models disagree constantly, so unchecked adoption is high
    late = _budgeted_run(student, mentor, AlwaysMentor(), MentorBudget(0.25))[8:]
    assert 0.1 < _share(late) < 0.4
    assert late[-1].stats.probe_level < 0.25  # a fixed verifier leaves only the probe rate to lower


class LeansToStudent:
    """A graded verifier that always prefers the student's segment by one logit."""

    graded = True

    def choose(self, divergence: Divergence) -> Verdict:
        return Verdict(adopt_mentor=False, lean=-1.0)


def test_budget_lowers_a_graded_verifiers_adoption_bar(student, mentor):
    unbudgeted = [generate(student, mentor, LeansToStudent(), seed=s, probe_rate=0.25) for s in range(3)]
    assert _share(unbudgeted) == 0.0
    budget = MentorBudget(0.25)
    results = _budgeted_run(student, mentor, LeansToStudent(), budget)
    assert 0.1 < _share(results[8:]) < 0.4  # adopted once the pressure passed one logit
    assert 0.7 < budget.pressure < 1.5  # it settles where the bar meets the verifier's lean of one logit
    assert all(r.stats.probe_level == 0.25 for r in results)  # the bar moved, not the probe rate


def test_the_budget_is_on_by_default_and_zero_turns_it_off():
    from click.testing import CliRunner

    from edge_collab.cli.main import cli
    from edge_collab.server.schema import ChatRequest
    from edge_collab.settings import GenerationSettings

    assert GenerationSettings().mentor_budget == 0.18
    message = [{"role": "user", "content": "hi"}]
    assert "mentor_budget" not in ChatRequest(messages=message).overrides()  # the server's default stands
    off = ChatRequest(messages=message, mentor_budget=0).overrides()
    assert GenerationSettings().with_changes(**off).mentor_budget is None  # 0 on every surface: no controller
    assert ChatRequest(messages=message, mentor_budget=0.3).overrides()["mentor_budget"] == 0.3
    help_text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "--mentor-budget" in help_text and "0 turns it off" in help_text and "default: 0.18" in help_text


def _position(student_p: float, mentor_top_p: float, mentor_student_p: float, student_mentor_p: float | None):
    from edge_collab.engine.sampling import TokenScore
    from edge_collab.verifiers.features import Position

    return Position(
        index=3,
        student_token=1,
        student=TokenScore(math.log(student_p), 1.0, 0.1),
        mentor_token=2,
        mentor_top_logprob=math.log(mentor_top_p),
        mentor_student_logprob=math.log(mentor_student_p),
        mentor_entropy=1.0,
        mentor_margin=0.1,
        student_mentor_logprob=-math.inf if student_mentor_p is None else math.log(student_mentor_p),
    )


def test_the_average_rule_fires_where_the_mixture_prefers_the_mentor_s_choice():
    from edge_collab.engine.trigger import AverageRule

    rule = AverageRule()
    # A sure mentor outvotes a fairly sure student: 0.3 + 0.9 against 0.6 + 0.05.
    assert rule.score(_position(0.6, 0.9, 0.05, 0.3)) == pytest.approx(math.log(1.2 / 0.65))
    # A sure student is not outvoted by a mentor that half agrees: 0.05 + 0.6 against 0.9 + 0.3.
    assert rule.score(_position(0.9, 0.6, 0.3, 0.05)) < 0
    # Not knowing the student's view of the mentor's choice counts it as 0: it fires less, never more.
    assert rule.score(_position(0.6, 0.9, 0.05, None)) == pytest.approx(math.log(0.9 / 0.65))
    assert rule.score(_position(0.45, 0.6, 0.3, None)) < 0 < rule.score(_position(0.45, 0.6, 0.3, 0.4))
    assert rule.may_fire(_position(0.99, 0.5, 0.4, 0.01).student)  # no gate on the student's score alone


def test_the_average_rule_over_whole_distributions_finds_a_third_token():
    """Where both whole distributions are known the mixture's choice can be a
    token neither model put first; the segment then starts with it."""
    from edge_collab.engine.trigger import AverageRule

    student = np.log([0.15, 0.45, 0.05, 0.35])  # its token: 1
    mentor = np.log([0.2, 0.1, 0.4, 0.3])  # its first choice: 2
    rows = {"student_logits": student + 3.0, "mentor_logprobs": mentor}  # logits: any offset
    rule = AverageRule()
    seen_whole = replace(_position(0.45, 0.4, 0.1, 0.05), **rows)
    # 0.35 + 0.3 for token 3 against 0.45 + 0.1 for the student's token.
    assert rule.score(seen_whole) == pytest.approx(math.log(0.65 / 0.55))
    assert rule.choice(seen_whole) == 3
    # Judged by the mentor's first choice alone it would not have fired (0.05 + 0.4 against 0.55).
    assert rule.score(_position(0.45, 0.4, 0.1, 0.05)) < 0 and rule.choice(_position(0.45, 0.4, 0.1, 0.05)) is None
    # Where the student's token wins the mixture, the score is how far the runner-up trails it.
    sure = np.log([0.05, 0.8, 0.05, 0.1])
    kept = replace(_position(0.8, 0.4, 0.1, 0.05), student_logits=sure, mentor_logprobs=mentor)
    assert rule.score(kept) == pytest.approx(math.log(0.45 / 0.9)) and rule.choice(kept) == 2
    # The choice is the same whether or not `score` just saw that position.
    assert rule.choice(seen_whole) == 3 and AverageRule().choice(kept) == 2
