"""The exceptions edge-collab raises.

    EdgeCollabError               base of everything below
    ├── SettingsError             an option is out of range or contradicts another
    ├── ModelFileError            a model file is missing, not GGUF, truncated or fails its hash
    │   └── ModelNotInstalledError  a preset is known but not installed yet
    ├── UnknownPresetError        a name is neither an installed preset nor a path
    ├── ContextOverflowError      the prompt does not fit the model's context
    ├── IncompatiblePairError     the chosen method needs something this pair lacks
    ├── MentorUnavailableError    the mentor cannot be reached or failed
    ├── VerifierError             the verifier cannot be loaded or run
    └── InstallError              installing a preset failed (download, package, disk)

The CLI turns each into a one-line message and a non-zero exit; nothing below the
edges prints.
"""

from __future__ import annotations


class EdgeCollabError(Exception):
    """Base class for every error edge-collab raises on purpose."""


class SettingsError(EdgeCollabError, ValueError):
    """A setting is out of range or contradicts another setting."""


class ModelFileError(EdgeCollabError):
    """A model file is missing, is not GGUF, is truncated or fails its hash."""


class ModelNotInstalledError(ModelFileError):
    """A known preset has not been installed yet."""


class UnknownPresetError(EdgeCollabError):
    """A model name is neither a known preset nor a path to a .gguf file."""


class ContextOverflowError(EdgeCollabError):
    """The prompt does not fit in the model's context window."""


class IncompatiblePairError(EdgeCollabError):
    """The requested method cannot run on this student/mentor pair."""


class MentorUnavailableError(EdgeCollabError):
    """The mentor could not be reached or answered with an error."""


class VerifierError(EdgeCollabError):
    """The verifier could not be loaded or run."""


class InstallError(EdgeCollabError):
    """Installing a model preset failed."""
