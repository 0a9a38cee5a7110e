"""Model presets: manifests of GGUF files published on PyPI, and their installer."""

from edge_collab.presets.registry import Pair, Preset, load_pairs, load_presets, resolve_model

__all__ = ["Pair", "Preset", "load_pairs", "load_presets", "resolve_model"]
