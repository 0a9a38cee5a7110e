"""A GGUF model run in process by llama.cpp (through llama-cpp-python's C bindings).

We use the low-level bindings rather than `llama_cpp.Llama` because the engine
needs what `Llama` hides: logits of several positions from one batch, a second
KV sequence for scratch work, and cache truncation without re-evaluation.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import llama_cpp
import numpy as np

from edge_collab.backends import llama_log
from edge_collab.backends.base import ModelBackend
from edge_collab.backends.chat_prompt import chat_tokens, defuse, render_segments
from edge_collab.backends.gguf_file import check_gguf_path
from edge_collab.backends.preflight import ensure_loads
from edge_collab.errors import ContextOverflowError, EdgeCollabError, ModelFileError
from edge_collab.settings import ModelSettings

logger = logging.getLogger(__name__)

_MAX_AUTO_CONTEXT = 32768
_BATCH = 512
_PIECE_BYTES = 4096  # long text is counted in pieces of this size before it is tokenized whole
_ALL_LAYERS = 999

_backend_ready = False


def _init_llama_backend() -> None:
    global _backend_ready  # llama_backend_init is process-wide and must run once
    if not _backend_ready:
        llama_cpp.llama_backend_init()
        _backend_ready = True


def gpu_offload_supported() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaCppBackend(ModelBackend):
    """One GGUF model with its own context and KV cache."""

    def __init__(
        self,
        path: str | Path,
        settings: ModelSettings | None = None,
        *,
        name: str | None = None,
        preflight: bool = True,
    ):
        """`preflight`: load the file in a child process first, once per file, so
        that a malformed file is an error and not an abort (backends/preflight.py)."""
        super().__init__()
        settings = settings or ModelSettings()
        self.path = check_gguf_path(path)
        if preflight:
            ensure_loads(self.path)
        self.name = name or self.path.stem
        self._stack = ExitStack()
        self._piece_cache: dict[int, bytes] = {}
        self._fingerprint: str | None = None
        self._special_texts: tuple[str, ...] | None = None
        self._capture_hidden = False
        self._last_hidden: np.ndarray | None = None
        _init_llama_backend()
        try:
            self._load(settings)
        except BaseException:
            self._stack.close()
            raise

    def _load(self, settings: ModelSettings) -> None:
        if settings.gpu_layers and not gpu_offload_supported():
            logger.warning("this llama.cpp build has no GPU support; running %s on the CPU", self.name)
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = _ALL_LAYERS if settings.gpu_layers == -1 else settings.gpu_layers
        llama_log.clear_recent_errors()
        model = llama_cpp.llama_model_load_from_file(str(self.path).encode("utf-8"), model_params)
        if not model:
            raise ModelFileError(f"cannot load {self.path}: {_load_failure_reason()}")
        self._stack.callback(llama_cpp.llama_model_free, model)
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)

        threads = settings.threads or os.cpu_count() or 1
        on_gpu = settings.gpu_layers == -1 and gpu_offload_supported()
        self.cpu_threads = 1 if on_gpu else threads  # the cores it keeps busy (engine/local_mentor.py)
        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = settings.n_ctx or min(self.n_ctx_train, _MAX_AUTO_CONTEXT)
        context_params.n_batch = _BATCH
        context_params.n_ubatch = _BATCH
        context_params.n_seq_max = 2  # main + scratch
        context_params.kv_unified = True  # scratch shares the main cells: forking is free
        context_params.n_threads = threads
        context_params.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(model, context_params)
        if not ctx:
            raise EdgeCollabError(
                f"cannot create a {context_params.n_ctx}-token context for {self.name}: "
                f"{_load_failure_reason()} (try a smaller --n-ctx)"
            )
        self._stack.callback(llama_cpp.llama_free, ctx)
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        # llama.cpp clamps the batch to a small context and asserts (aborting the
        # process) on a decode beyond it: chunk by what it kept, never by what we asked.
        self._batch_size = max(1, min(_BATCH, llama_cpp.llama_n_batch(ctx), llama_cpp.llama_n_ubatch(ctx)))
        batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
        self._stack.callback(llama_cpp.llama_batch_free, batch)
        self._batch = batch
        self._bos = llama_cpp.llama_vocab_bos(self._vocab)
        self._eos = llama_cpp.llama_vocab_eos(self._vocab)
        template = llama_cpp.llama_model_chat_template(model, None)
        self.chat_template: str | None = template.decode("utf-8") if template else None

    def close(self) -> None:
        self._stack.close()

    # ---- tokenizer -------------------------------------------------------
    def tokenize(self, text: bytes, *, special: bool = False, add_bos: bool = False) -> list[int]:
        if len(text) > self.n_ctx:
            self._refuse_far_beyond_context(text, special)
        return self._tokenize(text, special, add_bos)

    def _refuse_far_beyond_context(self, text: bytes, special: bool) -> None:
        """llama.cpp's tokenizers take time growing with the square of an unbroken
        run's length (1 MB of one letter: minutes). Count long text in pieces of
        bounded size first, and refuse what is far beyond the context before
        tokenizing it whole. Counting in pieces cut at spaces is close to the whole
        count (merges across a cut are few), so only text over twice the context
        is refused here; the exact check comes after tokenizing."""
        limit = 2 * self.n_ctx
        counted = 0
        for piece in _pieces(text, _PIECE_BYTES):
            counted += len(self._tokenize(piece, special, False))
            if counted > limit:
                raise ContextOverflowError(
                    f"the prompt is over {limit} tokens ({len(text)} bytes) but {self.name}'s context holds "
                    f"{self.n_ctx}; shorten it or raise --n-ctx"
                )

    def _tokenize(self, text: bytes, special: bool, add_bos: bool) -> list[int]:
        capacity = len(text) + 8
        for _ in range(2):
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self._vocab, text, len(text), buffer, capacity, add_bos, special)
            if count >= 0:
                return list(buffer[:count])
            capacity = -count
        raise EdgeCollabError(f"{self.name}: tokenization failed")

    def token_bytes(self, token: int) -> bytes:
        piece = self._piece_cache.get(token)
        if piece is None:
            size = 64
            buffer = ctypes.create_string_buffer(size)
            count = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, size, 0, False)
            if count < 0:
                size = -count
                buffer = ctypes.create_string_buffer(size)
                count = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, size, 0, False)
            piece = buffer.raw[: max(count, 0)]
            self._piece_cache[token] = piece
        return piece

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def tokenizer_fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(str(self.n_vocab).encode())
            for token in range(self.n_vocab):
                digest.update(llama_cpp.llama_vocab_get_text(self._vocab, token) or b"")
                digest.update(b"\0")
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return (llama_cpp.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", errors="replace")

    def chat_prompt(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> list[int]:
        return chat_tokens(
            self.chat_template,
            messages,
            lambda text, special: self.tokenize(text, special=special),
            bos_text=self._token_text(self._bos),
            eos_text=self._token_text(self._eos),
            bos_token=self._bos if self.wants_bos else None,
            thinking=thinking,
        )

    def chat_prompt_text(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> str:
        """The conversation rendered with this model's template, as text (for a
        server that tokenizes for itself and adds BOS on its own). Contents are
        defused: the server parses special tokens in what it is sent."""
        bos = self._token_text(self._bos)
        specials = self.special_texts()
        segments = render_segments(self.chat_template, messages, bos, self._token_text(self._eos), thinking)
        text = "".join(part if markup else defuse(part, specials) for part, markup in segments)
        return text.removeprefix(bos) if bos else text

    def special_texts(self) -> tuple[str, ...]:
        if self._special_texts is None:
            wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
            texts = {
                self._token_text(token)
                for token in range(self.n_vocab)
                if llama_cpp.llama_vocab_get_attr(self._vocab, token) & wanted
            }
            self._special_texts = tuple(sorted((t for t in texts if len(t) > 1 and t.strip()), key=len, reverse=True))
        return self._special_texts

    @property
    def wants_bos(self) -> bool:
        # A model that asks for BOS but has none gets none (llama.cpp would assert).
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and self._bos >= 0

    # ---- cache primitives ------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(llama_cpp.llama_model_n_embd(self._model))

    def branch_logits_and_hidden(self, keep: int, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """`branch_logits`, plus the model's last hidden state (the final norm's
        output, what the output head reads) at the last of `tokens`."""
        llama_cpp.llama_set_embeddings(self._ctx, True)  # logits still come out beside them
        self._capture_hidden = True
        try:
            logits = self.branch_logits(keep, tokens)
            assert self._last_hidden is not None
            return logits, self._last_hidden
        finally:
            self._capture_hidden, self._last_hidden = False, None
            llama_cpp.llama_set_embeddings(self._ctx, False)

    def _forward(self, tokens: Sequence[int], start: int, sequence: int, output_rows: int) -> np.ndarray:
        began = time.perf_counter()
        rows: list[np.ndarray] = []
        first_output = len(tokens) - output_rows
        batch = self._batch
        for offset in range(0, len(tokens), self._batch_size):
            chunk = tokens[offset : offset + self._batch_size]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = sequence
                batch.logits[i] = offset + i >= first_output
            status = llama_cpp.llama_decode(self._ctx, batch)
            if status == 1:
                raise ContextOverflowError(f"{self.name}: no room left in the {self.n_ctx}-token context")
            if status != 0:
                raise EdgeCollabError(f"{self.name}: llama.cpp evaluation failed (status {status})")
            for i in range(max(0, first_output - offset), len(chunk)):
                pointer = llama_cpp.llama_get_logits_ith(self._ctx, i)
                rows.append(np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy())
        if self._capture_hidden:
            pointer = llama_cpp.llama_get_embeddings_ith(self._ctx, -1)
            if not pointer:
                raise EdgeCollabError(f"{self.name}: llama.cpp returned no hidden state")
            self._last_hidden = np.ctypeslib.as_array(pointer, shape=(self.hidden_size,)).copy()
        self.counters.seconds += time.perf_counter() - began
        return np.stack(rows)

    def _forget(self, sequence: int, start: int) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, sequence, start, -1)

    def _fork(self, source: int, target: int, start: int, end: int) -> None:
        llama_cpp.llama_memory_seq_cp(self._memory, source, target, start, end)


def _pieces(text: bytes, size: int) -> Iterator[bytes]:
    """`text` in pieces of about `size` bytes, cut before a space where there is
    one, never inside a UTF-8 character."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(b" ", start + 1, end)
            if space > start:
                end = space
            else:
                while end > start + 1 and text[end] & 0xC0 == 0x80:  # a continuation byte
                    end -= 1
        yield text[start:end]
        start = end


def _load_failure_reason() -> str:
    errors = [line for line in llama_log.take_recent_errors() if "failed to load model" not in line]
    if not errors:
        return "llama.cpp gave no reason"
    reason = errors[-1]
    for prefix in ("llama_model_load: error loading model: ", "llama_model_load: "):
        reason = reason.removeprefix(prefix)
    return reason
