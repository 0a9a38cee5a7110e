"""Options at and near the edges of their allowed ranges, together, with short
and long inputs, on the tiny models: every run ends in an answer or a one-line
error of our own, never in a signal (which would take pytest down)."""

from __future__ import annotations

import random

import pytest

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.engine.methods import METHOD_NAMES
from edge_collab.errors import EdgeCollabError
from edge_collab.settings import GENERATION_KINDS, GENERATION_OPTIONS

CONTEXTS = (64, 65, 100, 160, 256)
INPUTS = ("the", "the cat sat on the mat. " * 3, "the cat sat on the mat. " * 12, "a" * 300)
RUNS = 150


def _edges(name: str) -> list[object]:
    """Values at and next to the option's limits (huge ones cut to what a tiny model can do)."""
    option, kind = GENERATION_OPTIONS[name], GENERATION_KINDS[name]
    if option.choices is not None:
        return list(option.choices)
    if kind == "bool":
        return [True, False]
    if kind == "strings":
        return [(), ("\n",), ("the", "a", ".", " ")]
    low = option.low if option.low is not None else 0
    high = option.high if option.high is not None else 1e6
    if kind == "int":
        high = min(int(high), 600)  # beyond every tiny context
        return sorted({int(low), int(low) + 1, high - 1, high})
    top = high - 1e-6 if option.high_open else high
    return [low, low + 1e-6, top - 1e-3, top]


@pytest.fixture(scope="module")
def pairs(tiny_paths):
    opened = {}
    for n_ctx in CONTEXTS:
        settings = ModelSettings(n_ctx=n_ctx, threads=1)
        student = LlamaCppBackend(tiny_paths["student"], settings)
        mentor = LlamaCppBackend(tiny_paths["mentor"], settings)
        opened[n_ctx] = CollabPair(student, mentor, verifier="self")
    yield opened
    for pair in opened.values():
        pair.close()


def test_options_at_their_limits_never_end_in_a_signal(pairs):
    rng = random.Random(22)
    names = [name for name in GENERATION_OPTIONS if name != "method"]
    outcomes = {"answered": 0, "refused": 0}
    for run in range(RUNS):
        method = METHOD_NAMES[run % len(METHOD_NAMES)]
        changes = {name: rng.choice(_edges(name)) for name in rng.sample(names, k=rng.randint(1, len(names)))}
        n_ctx, text = rng.choice(CONTEXTS), rng.choice(INPUTS)
        pair = pairs[n_ctx]
        try:
            settings = GenerationSettings(method=method, **changes)  # type: ignore[arg-type]
            pair.settings = settings
            result = pair.generate(text) if run % 2 else pair.complete(text)
        except EdgeCollabError as error:
            assert str(error) and "\n" not in str(error), (method, changes, n_ctx, str(error))
            outcomes["refused"] += 1
            continue
        assert result.stats.tokens_total <= settings.max_new_tokens
        outcomes["answered"] += 1
    # Both kinds of outcome happen, so the fuzz reaches generation and the checks.
    assert outcomes["answered"] > RUNS // 3 and outcomes["refused"] > 0, outcomes
