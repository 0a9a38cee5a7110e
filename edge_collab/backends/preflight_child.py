"""The child process of backends/preflight.py: load one model file and use it
in miniature, as the runtime would; exit 0 if that worked, 1 with one line on
standard error if llama.cpp reported an error. A signal is what the parent
watches for.

    python -m edge_collab.backends.preflight_child MODEL.gguf
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.errors import SettingsError
from edge_collab.settings import ModelSettings


def _exercise(path: Path) -> None:
    """What the runtime does with a model, in miniature."""
    with LlamaCppBackend(path, ModelSettings(n_ctx=256, threads=1), preflight=False) as model:
        for token in range(model.n_vocab):
            model.token_bytes(token)
            model.is_end(token)
        sample = "Hello, world! 12 + 30 = 42.\n"
        tokens = model.plain_prompt(sample)
        model.tokenize(sample.encode(), special=True)
        # A broken chat template is refused when a chat uses it; completions still work.
        with contextlib.suppress(SettingsError):
            model.chat_prompt([{"role": "user", "content": sample}])
        model.detokenize(tokens)
        model.append(tokens[:8])
        model.next_logits()


def main() -> None:
    path = Path(sys.argv[1])
    try:
        _exercise(path)
    except Exception as error:  # reported to the parent in one line
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
