"""Verifiers decide, at a divergence, whose lookahead segment to keep."""

from edge_collab.verifiers.base import Divergence, Verdict, Verifier
from edge_collab.verifiers.fixed import AlwaysMentor, AlwaysStudent
from edge_collab.verifiers.self_verifier import SelfVerifier

__all__ = ["AlwaysMentor", "AlwaysStudent", "Divergence", "SelfVerifier", "Verdict", "Verifier"]
