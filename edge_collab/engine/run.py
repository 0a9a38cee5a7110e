"""Everything one generation works with, handed to the method that writes it."""

from __future__ import annotations

from dataclasses import dataclass

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.budget import MentorBudget
from edge_collab.engine.mentor import Mentor
from edge_collab.engine.result import Prompts
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.base import Verifier


@dataclass
class Run:
    student: ModelBackend
    mentor: Mentor | None
    verifier: Verifier | None
    settings: GenerationSettings
    prompts: Prompts
    budget: MentorBudget | None = None  # keeps its state across the answers of a run
