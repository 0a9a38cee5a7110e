"""What the engine needs from a language model, and the KV-cache bookkeeping
that every in-process backend shares.

A backend holds one growing token sequence (the model's context). Appending is
lazy: tokens wait in `pending` until logits are needed, then all of them are
evaluated in one batch, so a mentor that is consulted only at probes catches up
with a single forward pass. Rolling back truncates the cache; nothing that
stays is evaluated again. Scratch work (a verifier prompt) runs on a second
sequence forked from the first and is dropped afterwards, so the main cache is
never rebuilt (rebuilding changes greedy output; see docs/method.md, "Pitfalls").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_collab.backends.chat_prompt import as_utf8
from edge_collab.errors import ContextOverflowError, EdgeCollabError

MAIN_SEQUENCE = 0
SCRATCH_SEQUENCE = 1


@dataclass
class BackendCounters:
    """Work done by one model; the engine turns these into statistics."""

    evaluated_tokens: int = 0  # tokens run through the model on the main sequence
    reevaluated_tokens: int = 0  # of those, tokens evaluated again at the same place
    branch_tokens: int = 0  # tokens evaluated on scratch branches (verifier prompts)
    forward_calls: int = 0  # batches evaluated, on any sequence: one per token decoded, one per batch read
    seconds: float = 0.0  # time inside the model: forward passes and cache edits

    def snapshot(self) -> BackendCounters:
        return BackendCounters(**vars(self))

    def since(self, earlier: BackendCounters) -> BackendCounters:
        return BackendCounters(**{k: v - getattr(earlier, k) for k, v in vars(self).items()})


@dataclass
class _SequenceState:
    """Tokens of one KV sequence: evaluated (in the cache) and pending."""

    sequence_id: int
    evaluated: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    last_logits: np.ndarray | None = None  # prediction after the last evaluated token

    def __len__(self) -> int:
        return len(self.evaluated) + len(self.pending)


class ModelBackend(ABC):
    """A model with a tokenizer and one KV-cached context.

    Subclasses provide the tokenizer and three cache primitives (`_forward`,
    `_forget`, `_fork`); this class keeps track of which tokens are in the cache.
    """

    name: str
    n_ctx: int
    n_vocab: int
    cpu_threads: int | None = None  # CPU cores its computing keeps busy; None: unknown

    def __init__(self) -> None:
        self.counters = BackendCounters()
        self._main = _SequenceState(MAIN_SEQUENCE)
        self._branch: _SequenceState | None = None
        self._branch_start = 0
        self._version = 0

    # ---- tokenizer -------------------------------------------------------
    @abstractmethod
    def tokenize(self, text: bytes, *, special: bool = False, add_bos: bool = False) -> list[int]:
        """Token ids of `text`; `special` parses control-token text such as <|im_end|>."""

    @abstractmethod
    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (empty for control tokens)."""

    @abstractmethod
    def is_end(self, token: int) -> bool:
        """Whether the token ends generation (end of sequence or of turn)."""

    @abstractmethod
    def tokenizer_fingerprint(self) -> str:
        """Equal for two models exactly when their token ids mean the same text."""

    @abstractmethod
    def chat_prompt(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> list[int]:
        """Tokens of a conversation in the model's own chat format, ready for the reply."""

    def chat_prompt_text(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> str:
        """The conversation in the model's chat format as text, for a server that
        tokenizes for itself (a served mentor reads the student's rendering);
        message contents are defused (chat_prompt.defuse)."""
        raise EdgeCollabError(f"{self.name} cannot render prompts as text for a remote mentor")

    def special_texts(self) -> tuple[str, ...]:
        """Texts a tokenizer that parses special tokens would read as one
        (control and user-defined tokens), longest first."""
        return ()

    @property
    def wants_bos(self) -> bool:
        """Whether the model's prompts start with a BOS token (its own setting)."""
        return False

    def plain_prompt(self, text: str) -> list[int]:
        """Tokens of raw text (no chat template), with BOS if the model wants one."""
        tokens = self.tokenize(as_utf8(text, "the prompt"), add_bos=self.wants_bos)
        if not tokens:
            raise EdgeCollabError(f"{self.name}: the prompt is empty")
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(t) for t in tokens)

    def starts_word(self, token: int) -> bool:
        piece = self.token_bytes(token)
        return piece[:1] in (b" ", b"\n", b"\t", b"\r")

    # ---- cache primitives ------------------------------------------------
    @abstractmethod
    def _forward(self, tokens: Sequence[int], start: int, sequence: int, output_rows: int) -> np.ndarray:
        """Evaluate `tokens` at positions start.. of `sequence`; return the logits of
        the last `output_rows` positions, shape (output_rows, n_vocab)."""

    @abstractmethod
    def _forget(self, sequence: int, start: int) -> None:
        """Drop positions >= start of `sequence` from the cache."""

    @abstractmethod
    def _fork(self, source: int, target: int, start: int, end: int) -> None:
        """Let `target` share positions [start, end) of `source`."""

    @abstractmethod
    def close(self) -> None:
        """Free native resources; the backend is unusable afterwards."""

    def __enter__(self) -> ModelBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the context -----------------------------------------------------
    # Every operation below acts on the active sequence: the branch while one
    # is open, the main sequence otherwise.

    @property
    def _active(self) -> _SequenceState:
        return self._branch if self._branch is not None else self._main

    def __len__(self) -> int:
        return len(self._active)

    @property
    def tokens(self) -> list[int]:
        """A copy of the context's tokens (evaluated and pending)."""
        state = self._active
        return state.evaluated + state.pending

    def tokens_from(self, start: int) -> list[int]:
        return self.tokens[start:]

    @property
    def version(self) -> int:
        """Changes whenever the context changes; lets callers cache per state."""
        return self._version

    def append(self, tokens: Sequence[int]) -> None:
        """Add tokens to the context; they are evaluated when logits are next needed."""
        if len(self) + len(tokens) > self.n_ctx:
            raise ContextOverflowError(
                f"{self.name}: context of {self.n_ctx} tokens is full ({len(self)} used, {len(tokens)} more needed)"
            )
        if tokens:
            self._active.pending.extend(tokens)
            self._version += 1

    def truncate(self, length: int) -> None:
        """Roll the context back to its first `length` tokens."""
        state = self._active
        if length >= len(state):
            return
        if self._branch is not None and length < self._branch_start:
            raise ValueError("cannot truncate a branch below the point it started from")
        evaluated = len(state.evaluated)
        if length < evaluated:
            self._forget(state.sequence_id, length)
            del state.evaluated[length:]
            state.pending.clear()
            state.last_logits = None
        else:
            del state.pending[length - evaluated :]
        self._version += 1

    def reset_to(self, tokens: Sequence[int]) -> None:
        """Make the context equal `tokens`, keeping the longest cached common prefix."""
        common = 0
        for ours, theirs in zip(self.tokens, tokens, strict=False):
            if ours != theirs:
                break
            common += 1
        self.truncate(common)
        self.append(tokens[common:])

    def next_logits(self) -> np.ndarray:
        """Logits for the token after the context (evaluates pending tokens)."""
        state = self._active
        if not state.pending and state.last_logits is not None:
            return state.last_logits
        if not state.pending:
            self._requeue_last_token(state)
        return self._evaluate_pending(state, 1)[0]

    def score(self, tokens: Sequence[int], *, predict_first: bool = True) -> np.ndarray:
        """Append `tokens` and return len(tokens)+1 rows of logits: row i predicts
        tokens[i], the last row predicts what follows. One batched forward pass.
        With predict_first=False the row predicting tokens[0] is left out (the
        caller has it), which spares re-evaluating the last cached token after a
        rollback."""
        state = self._active
        if not predict_first:
            self.append(tokens)
            return self._evaluate_pending(state, len(tokens))
        first_row = None
        if not state.pending:
            if state.last_logits is None:
                self._requeue_last_token(state)
            else:
                first_row = state.last_logits
        self.append(tokens)
        rows = self._evaluate_pending(state, len(tokens) + (first_row is None))
        return rows if first_row is None else np.vstack([first_row[None, :], rows])

    # ---- branches --------------------------------------------------------
    def begin_branch(self, start: int) -> None:
        """Continue from context[:start] on a scratch sequence that shares the
        cached prefix. The main context stays as it is until `end_branch`."""
        if self._branch is not None:
            raise ValueError(f"{self.name}: a branch is already open")
        main = self._main
        if start > len(main):
            raise ValueError(f"{self.name}: cannot branch at {start}, the context has {len(main)} tokens")
        if start > len(main.evaluated):
            self._evaluate_pending(main, 1)
        self._fork(MAIN_SEQUENCE, SCRATCH_SEQUENCE, 0, start)
        at_end = start == len(main.evaluated)
        self._branch = _SequenceState(
            SCRATCH_SEQUENCE, main.evaluated[:start], [], main.last_logits if at_end else None
        )
        self._branch_start = start
        self._version += 1

    def end_branch(self, keep: bool) -> None:
        """Close the branch: `keep` makes it the main context, otherwise it is dropped."""
        branch = self._branch
        if branch is None:
            raise ValueError(f"{self.name}: no branch is open")
        self._branch = None
        if keep:
            self._forget(MAIN_SEQUENCE, self._branch_start)
            self._fork(SCRATCH_SEQUENCE, MAIN_SEQUENCE, self._branch_start, len(branch.evaluated))
            self._main = _SequenceState(MAIN_SEQUENCE, branch.evaluated, branch.pending, branch.last_logits)
        self._forget(SCRATCH_SEQUENCE, 0)
        self._version += 1

    def discard_branch(self) -> None:
        """Drop an open branch, if any (after an interrupted generation)."""
        if self._branch is not None:
            self.end_branch(keep=False)

    def branch_logits(self, keep: int, tokens: Sequence[int]) -> np.ndarray:
        """Logits after context[:keep] + tokens, computed on a scratch branch;
        the context and its cache are left exactly as they were."""
        if not tokens:
            raise ValueError("branch_logits needs at least one token")
        self.begin_branch(keep)
        try:
            self.append(tokens)
            return self.next_logits()
        finally:
            self.end_branch(keep=False)

    @property
    def hidden_size(self) -> int:
        """Numbers in the model's last hidden state; 0 where the backend cannot read it."""
        return 0

    def branch_logits_and_hidden(self, keep: int, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """`branch_logits`, plus the model's last hidden state at the last of
        `tokens` (what a learned verifier reads). Backends that can, override it."""
        raise EdgeCollabError(f"{self.name}: this backend cannot return hidden states")

    # ---- evaluation ------------------------------------------------------
    def _requeue_last_token(self, state: _SequenceState) -> None:
        # The logits after the last cached token were lost by a rollback; the
        # only way back is to evaluate that one token again.
        if not state.evaluated:
            raise ValueError(f"{self.name}: the context is empty, so there is nothing to predict from")
        state.pending.insert(0, state.evaluated.pop())
        self._forget(state.sequence_id, len(state.evaluated))
        self.counters.reevaluated_tokens += 1

    def _evaluate_pending(self, state: _SequenceState, output_rows: int) -> np.ndarray:
        tokens, start = state.pending, len(state.evaluated)
        cells = start + len(tokens)  # KV cells in use afterwards: a branch also holds the main's
        if state is self._branch:
            cells += len(self._main.evaluated) - self._branch_start
        if cells > self.n_ctx:
            raise ContextOverflowError(f"{self.name}: no room in the {self.n_ctx}-token context")
        try:
            rows = self._forward(tokens, start, state.sequence_id, output_rows)
        except BaseException:
            # Interrupted or failed mid-batch: drop whatever reached the cache so
            # the bookkeeping (tokens still pending) stays true.
            self._forget(state.sequence_id, start)
            raise
        state.evaluated.extend(tokens)
        state.pending = []
        state.last_logits = rows[-1]
        self.counters.forward_calls += 1
        if state.sequence_id == MAIN_SEQUENCE:
            self.counters.evaluated_tokens += len(tokens)
        else:
            self.counters.branch_tokens += len(tokens)
        return rows
