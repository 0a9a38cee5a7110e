"""matplotlib, loaded only when a plot is drawn and always headless."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """`matplotlib.pyplot` on the Agg backend: plots are written to PNG files,
    never shown, and importing it at start-up would slow every command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
