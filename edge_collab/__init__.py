"""edge-collab: a small local model writes; a larger mentor model guides it now and then.

The public API (documented in docs/api.md):

    CollabPair          open a student/mentor pair and generate with it
    GenerationSettings  how one answer is generated (probe rate, segment length, ...)
    ModelSettings       how one GGUF model is loaded (context, GPU layers, threads)
    GenerationResult    text, pieces tagged by source, and statistics
    Generation          a streaming generation: iterate for pieces, then .result
    Piece, Source       a piece of text and who wrote it
    GenerationStats     the statistics of docs/method.md, "Metrics"
    errors              EdgeCollabError and its subclasses
"""

import logging

from edge_collab.engine.generation import Generation
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.stats import GenerationStats
from edge_collab.errors import (
    ContextOverflowError,
    EdgeCollabError,
    IncompatiblePairError,
    InstallError,
    MentorUnavailableError,
    ModelFileError,
    ModelNotInstalledError,
    SettingsError,
    UnknownPresetError,
    VerifierError,
)
from edge_collab.pair import CollabPair
from edge_collab.settings import GenerationSettings, ModelSettings

# A library logs; the application decides where logs go.
logging.getLogger("edge_collab").addHandler(logging.NullHandler())

__all__ = [
    "CollabPair",
    "ContextOverflowError",
    "EdgeCollabError",
    "Generation",
    "GenerationResult",
    "GenerationSettings",
    "GenerationStats",
    "IncompatiblePairError",
    "InstallError",
    "MentorUnavailableError",
    "ModelFileError",
    "ModelNotInstalledError",
    "ModelSettings",
    "Piece",
    "SettingsError",
    "Source",
    "UnknownPresetError",
    "VerifierError",
]
