"""Malformed model files: every mutant of the tiny model is a one-line error or
loads and generates; none ends the process by a signal.

The mutants break what llama.cpp's loader reads: the tokenizer's arrays, token
types, merges, special token ids, the architecture's numbers, tensor shapes
and types. Loading happens in this process, as the CLI and the server do it:
a file that made llama.cpp abort would take pytest down with it, which is
what the load-in-a-child check (edge_collab/backends/preflight.py) prevents.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from tiny_gguf import STUDENT, Metadata, Tensors, write_tiny_model

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.errors import EdgeCollabError, ModelFileError

U32, I32, F32, STR, ARR = (
    gguf.GGUFValueType.UINT32,
    gguf.GGUFValueType.INT32,
    gguf.GGUFValueType.FLOAT32,
    gguf.GGUFValueType.STRING,
    gguf.GGUFValueType.ARRAY,
)


def _set(key: str, value: object, vtype: gguf.GGUFValueType = U32):
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        metadata[key] = (value, vtype, None)

    return mutate


def _drop(key: str):
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        metadata.pop(key, None)
        tensors.pop(key, None)

    return mutate


def _array(key: str, change):  # type: ignore[no-untyped-def]
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        value, vtype, sub_type = metadata[key]
        metadata[key] = (change(list(value)), vtype, sub_type)

    return mutate


def _tensor(name: str, change):  # type: ignore[no-untyped-def]
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        array, raw_dtype = tensors[name]
        tensors[name] = (change(array), raw_dtype)

    return mutate


def _all_tensors(change):  # type: ignore[no-untyped-def]
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        for name, (array, raw_dtype) in list(tensors.items()):
            tensors[name] = (change(array), raw_dtype)

    return mutate


def _each(*mutations):  # type: ignore[no-untyped-def]
    def mutate(metadata: Metadata, tensors: Tensors) -> None:
        for mutation in mutations:
            mutation(metadata, tensors)

    return mutate


TOKENS, SCORES, TYPES = "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"
BIG = 1_000_000

MUTANTS = {
    # the tokenizer's arrays
    "tokens-shorter-than-scores": _array(TOKENS, lambda v: v[:-10]),
    "scores-shorter-than-tokens": _array(SCORES, lambda v: v[:-10]),
    "types-shorter-than-tokens": _array(TYPES, lambda v: v[:-10]),
    "no-token-list": _drop(TOKENS),
    "no-scores": _drop(SCORES),
    "no-token-types": _drop(TYPES),
    "token-list-of-numbers": _set(TOKENS, list(range(300)), ARR),
    "empty-token-texts": _array(TOKENS, lambda v: [""] * 8 + v[8:]),
    "duplicate-tokens": _array(TOKENS, lambda v: v[:-4] + [v[-1]] * 4),
    "one-token-vocabulary": _each(
        _array(TOKENS, lambda v: v[:1]), _array(SCORES, lambda v: v[:1]), _array(TYPES, lambda v: v[:1])
    ),
    # token types
    "token-type-99": _array(TYPES, lambda v: [99] * 10 + v[10:]),
    "negative-token-type": _array(TYPES, lambda v: [-1] * 10 + v[10:]),
    "every-token-control": _array(TYPES, lambda v: [3] * len(v)),
    "every-token-unused": _array(TYPES, lambda v: [5] * len(v)),
    "no-byte-tokens": _array(TYPES, lambda v: [1 if t == 6 else t for t in v]),
    # tokenizer models and merges
    "gpt2-tokenizer-without-merges": _set("tokenizer.ggml.model", "gpt2", STR),
    "gpt2-tokenizer-with-bad-merges": _each(
        _set("tokenizer.ggml.model", "gpt2", STR),
        _set("tokenizer.ggml.merges", ["a b c", "nonsense", "", "▁ ▁"], ARR),
    ),
    "unknown-tokenizer-model": _set("tokenizer.ggml.model", "frobnicate", STR),
    "bert-tokenizer": _set("tokenizer.ggml.model", "bert", STR),
    "unknown-pre-tokenizer": _each(_set("tokenizer.ggml.model", "gpt2", STR), _set("tokenizer.ggml.pre", "zzz", STR)),
    # special token ids
    "bos-out-of-range": _set("tokenizer.ggml.bos_token_id", BIG),
    "eos-out-of-range": _set("tokenizer.ggml.eos_token_id", BIG),
    "eot-out-of-range": _set("tokenizer.ggml.eot_token_id", BIG),
    "unk-out-of-range": _set("tokenizer.ggml.unknown_token_id", BIG),
    "padding-out-of-range": _set("tokenizer.ggml.padding_token_id", BIG),
    "bos-is-max-uint32": _set("tokenizer.ggml.bos_token_id", 2**32 - 1),
    "eos-as-a-string": _set("tokenizer.ggml.eos_token_id", "two", STR),
    # the architecture's numbers
    "unknown-architecture": _set("general.architecture", "frobnicate", STR),
    "no-architecture": _drop("general.architecture"),
    "zero-heads": _set("llama.attention.head_count", 0),
    "heads-not-dividing-width": _set("llama.attention.head_count", 3),
    "zero-kv-heads": _set("llama.attention.head_count_kv", 0),
    "more-kv-heads-than-heads": _set("llama.attention.head_count_kv", 8),
    "more-blocks-than-tensors": _set("llama.block_count", 5),
    "zero-blocks": _set("llama.block_count", 0),
    "huge-block-count": _set("llama.block_count", 2**31),
    "wrong-width": _set("llama.embedding_length", 64),
    "zero-width": _set("llama.embedding_length", 0),
    "wrong-feed-forward": _set("llama.feed_forward_length", 128),
    "zero-context-length": _set("llama.context_length", 0),
    "zero-rope-dimensions": _set("llama.rope.dimension_count", 0),
    "huge-rope-dimensions": _set("llama.rope.dimension_count", 4096),
    "negative-norm-epsilon": _set("llama.attention.layer_norm_rms_epsilon", -1.0, F32),
    "nan-norm-epsilon": _set("llama.attention.layer_norm_rms_epsilon", float("nan"), F32),
    "block-count-as-a-string": _set("llama.block_count", "two", STR),
    "alignment-3": _set("general.alignment", 3),
    "alignment-0": _set("general.alignment", 0),
    # tensors: shapes and types
    "embeddings-with-fewer-rows": _tensor("token_embd.weight", lambda a: a[:-5]),
    "output-transposed": _tensor("output.weight", lambda a: np.ascontiguousarray(a.T)),
    "missing-tensor": _drop("blk.1.ffn_up.weight"),
    "missing-embeddings": _drop("token_embd.weight"),
    "extra-tensor": lambda m, t: t.__setitem__("blk.9.surprise.weight", (np.ones(4, np.float32), None)),
    "norm-as-a-matrix": _tensor("output_norm.weight", lambda a: np.ones((2, a.shape[0]), np.float32)),
    "int32-weights": _tensor("blk.0.attn_q.weight", lambda a: a.astype(np.int32)),
    "float16-weights": _all_tensors(lambda a: a.astype(np.float16)),
    "float64-weights": _tensor("blk.0.attn_k.weight", lambda a: a.astype(np.float64)),
    "nan-weights": _tensor("blk.0.attn_v.weight", lambda a: np.full_like(a, np.nan)),
    "empty-tensor": _tensor("blk.0.ffn_norm.weight", lambda a: a[:0]),
    # the chat template
    "broken-chat-template": _set("tokenizer.chat_template", "{% for message in %}", STR),
    "chat-template-that-raises": _set("tokenizer.chat_template", "{{ raise_exception('no chat here') }}", STR),
    "chat-template-writing-the-placeholder-characters": _set(
        "tokenizer.chat_template", "\ue0009\ue001{% for m in messages %}{{ m['content'] }}\ue000{% endfor %}", STR
    ),
}


def _generate_briefly(path: Path) -> None:
    settings = ModelSettings(n_ctx=256, threads=1)
    with LlamaCppBackend(path, settings) as backend:
        pair = CollabPair(backend, settings=GenerationSettings(method="student", max_new_tokens=6))
        pair.generate("the cat sat")
        pair.complete("the cat")


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_mutated_model_file_loads_or_is_a_one_line_error(tmp_path, name):
    path = write_tiny_model(tmp_path / f"{name}.gguf", STUDENT, MUTANTS[name])
    try:
        _generate_briefly(path)
    except EdgeCollabError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 600, message
    # Anything else (a Python exception of another kind) fails the test; a signal
    # would have ended pytest itself.


@pytest.mark.parametrize("name", ["types-shorter-than-tokens", "bos-out-of-range", "more-blocks-than-tensors"])
def test_the_cli_answers_a_malformed_file_in_one_line(tmp_path, name):
    path = write_tiny_model(tmp_path / f"{name}.gguf", STUDENT, MUTANTS[name])
    command = [sys.executable, "-m", "edge_collab.cli", "run", "the cat", "--student", str(path)]
    done = subprocess.run(
        [*command, "--method", "student", "--max-tokens", "4", "--n-ctx", "256"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode >= 0, f"ended by {signal.Signals(-done.returncode).name}"
    if done.returncode != 0:
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.strip().startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


CRASHING = ("duplicate-tokens", "zero-blocks", "negative-norm-epsilon", "float64-weights", "bert-tokenizer")


@pytest.mark.parametrize("name", CRASHING)
def test_a_file_that_crashes_llama_cpp_is_refused_in_one_line(tmp_path, name):
    """These mutants really end llama.cpp by a signal (an assertion's abort, or
    a segmentation fault), as the child check shows when run alone; loaded
    through the backend, each is a ModelFileError that says so."""
    path = write_tiny_model(tmp_path / f"{name}.gguf", STUDENT, MUTANTS[name])
    child = subprocess.run(
        [sys.executable, "-m", "edge_collab.backends.preflight_child", str(path)], capture_output=True, timeout=120
    )
    assert child.returncode in (-signal.SIGABRT, -signal.SIGSEGV), child.returncode
    with pytest.raises(ModelFileError, match="llama.cpp crashes on") as refused:
        LlamaCppBackend(path, ModelSettings(n_ctx=256, threads=1))
    assert "\n" not in str(refused.value)
