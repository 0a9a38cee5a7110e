"""Where edge-collab keeps its data (models, results).

Order of precedence: an explicit path (the CLI's --data-dir), the
EDGE_COLLAB_HOME environment variable, then the platform's user data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "EDGE_COLLAB_HOME"


def data_dir(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    return Path(platformdirs.user_data_dir("edge-collab", appauthor=False))


def models_dir(override: str | Path | None = None) -> Path:
    return data_dir(override) / "models"
