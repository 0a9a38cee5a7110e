"""Verifiers that always pick the same side: baselines and test doubles."""

from __future__ import annotations

from collections.abc import Callable

from edge_collab.verifiers.base import Divergence, Verdict, Verifier


class AlwaysMentor:
    """Adopt every mentor segment (an upper bound on mentor share)."""

    fixed_choice = True

    def choose(self, divergence: Divergence) -> Verdict:
        return Verdict(adopt_mentor=True)


class AlwaysStudent:
    """Keep every student segment (probes then only cost time)."""

    def choose(self, divergence: Divergence) -> Verdict:
        return Verdict(adopt_mentor=False)


# Their names on the command line and in result headers.
FIXED_VERIFIERS: dict[str, Callable[[], Verifier]] = {"always-mentor": AlwaysMentor, "always-student": AlwaysStudent}
