"""Write tiny GGUF language models for the test suite.

The models have random weights, two layers and a width of 32, so llama.cpp
loads and runs them in well under a second. Two tricks keep their output
usable as text:

* the vocabulary is SentencePiece-style (control tokens, the 256 byte
  tokens, a few dozen word pieces), so every output detokenizes; bytes that
  duplicate a one-character piece are never written, so every text the models
  write has one token spelling, as in real vocabularies;
* hidden dimension 0 carries a constant that no layer writes to, and the
  output rows of unwanted tokens (control tokens, non-ASCII bytes) weigh that
  dimension strongly negative. Greedy and sampled output therefore stays
  printable ASCII and the end-of-sequence token never appears by chance,
  so tests decide when generation stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

WORDS_A = [
    "▁the",
    "▁a",
    "▁cat",
    "▁dog",
    "▁sat",
    "▁on",
    "▁mat",
    "▁and",
    "▁is",
    "▁it",
    "▁to",
    "▁of",
    "▁in",
    "▁we",
    "▁two",
    "▁plus",
    "▁equals",
    "▁four",
    "▁answer",
    "▁so",
    "ing",
    "ed",
    "s",
    ".",
    ",",
    "▁",
    "▁The",
    "▁A",
    "▁B",
    "▁(",
    ")",
]
# A different vocabulary (other pieces, other order) for cross-tokenizer pairs.
WORDS_B = [
    "▁th",
    "e",
    "▁ca",
    "t",
    "▁do",
    "g",
    "▁sa",
    "▁o",
    "n",
    "▁an",
    "d",
    "▁i",
    "▁answ",
    "er",
    "▁",
    ".",
    ",",
    "▁fo",
    "ur",
    "▁tw",
    "o",
    "▁A",
    "▁B",
    "(",
    ")",
]


@dataclass(frozen=True)
class TinyModelSpec:
    name: str
    words: list[str]
    seed: int
    n_embd: int = 32
    n_layer: int = 2
    n_head: int = 4
    n_ff: int = 64
    context_length: int = 4096


def _vocab(words: list[str]) -> tuple[list[str], list[float], list[int]]:
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []

    def add(text: str, score: float, kind: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))

    add("<unk>", 0.0, gguf.TokenType.UNKNOWN)
    add("<s>", 0.0, gguf.TokenType.CONTROL)
    add("</s>", 0.0, gguf.TokenType.CONTROL)
    add("<|im_start|>", 0.0, gguf.TokenType.CONTROL)
    add("<|im_end|>", 0.0, gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    # SentencePiece merges pairs of existing pieces, so a word is reachable
    # only through its prefixes; longer pieces score higher so they win.
    pieces = sorted({word[:end] for word in words for end in range(2, len(word) + 1)})
    pieces += [word for word in words if len(word) == 1 and word not in pieces]
    for piece in pieces:
        add(piece, float(len(piece)), gguf.TokenType.NORMAL)
    return tokens, scores, types


def _is_printable_output(token: str, kind: int, single_char_pieces: set[str]) -> bool:
    if kind == int(gguf.TokenType.NORMAL):
        return True
    if kind == int(gguf.TokenType.BYTE):
        value = int(token[3:5], 16)
        character = "▁" if value == 0x20 else chr(value)
        # A byte that is also a piece would give two token ids for one text:
        # real vocabularies avoid that, so the tiny models never write it.
        return (value == 0x0A or 0x20 <= value < 0x7F) and character not in single_char_pieces
    return False


# What a mutation may change before the file is written: metadata by key, as
# (value, type, array element type), and tensors by name, as (array, raw dtype).
Metadata = dict[str, tuple[Any, gguf.GGUFValueType, gguf.GGUFValueType | None]]
Tensors = dict[str, tuple[np.ndarray, gguf.GGMLQuantizationType | None]]
Mutation = Callable[[Metadata, Tensors], None]


class _Recorder(gguf.GGUFWriter):
    """Collects what write_tiny_model adds, so a mutation can change it first."""

    def __init__(self) -> None:
        self.metadata: Metadata = {}
        self.tensors: Tensors = {}
        self.arch = "llama"
        self.add_key_value("general.architecture", "llama", gguf.GGUFValueType.STRING)

    def add_key_value(self, key: str, val: Any, vtype: gguf.GGUFValueType, sub_type: Any = None) -> None:
        self.metadata[key] = (val, vtype, sub_type)

    def add_tensor(self, name: str, tensor: np.ndarray, raw_shape: Any = None, raw_dtype: Any = None, **_: Any) -> None:
        self.tensors[name] = (tensor, raw_dtype)


def write_tiny_model(path: Path, spec: TinyModelSpec, mutate: Mutation | None = None) -> Path:
    """The tiny model of `spec`; `mutate` may break it first (the loader fuzz)."""
    recorder = _Recorder()
    _describe(recorder, spec)
    if mutate is not None:
        mutate(recorder.metadata, recorder.tensors)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.kv_data[0].clear()  # the metadata comes from the recorder, general.architecture included
    for key, (value, vtype, sub_type) in recorder.metadata.items():
        writer.add_key_value(key, value, vtype, sub_type)
    for name, (array, raw_dtype) in recorder.tensors.items():
        writer.add_tensor(name, array, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _describe(writer: gguf.GGUFWriter, spec: TinyModelSpec) -> None:
    rng = np.random.default_rng(spec.seed)
    tokens, scores, types = _vocab(spec.words)
    n_vocab, d, ff = len(tokens), spec.n_embd, spec.n_ff

    writer.add_name(spec.name)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(d)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(d // spec.n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_eot_token_id(4)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    def weight(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    embeddings = weight(n_vocab, d)
    embeddings[:, 0] = 4.0  # the constant "bias" dimension, see module docstring
    output = weight(n_vocab, d, scale=1.0)
    single_char_pieces = {
        t for t, k in zip(tokens, types, strict=True) if k == int(gguf.TokenType.NORMAL) and len(t) == 1
    }
    for token_id, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        output[token_id, 0] = 0.0 if _is_printable_output(token, kind, single_char_pieces) else -1000.0

    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(d, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(spec.n_layer):
        prefix = f"blk.{layer}"
        attn_out = weight(d, d)
        ffn_down = weight(d, ff)
        attn_out[0, :] = 0.0  # keep dimension 0 constant through the residual stream
        ffn_down[0, :] = 0.0
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(d, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", weight(d, d))
        writer.add_tensor(f"{prefix}.attn_k.weight", weight(d, d))
        writer.add_tensor(f"{prefix}.attn_v.weight", weight(d, d))
        writer.add_tensor(f"{prefix}.attn_output.weight", attn_out)
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(d, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weight(ff, d))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weight(ff, d))
        writer.add_tensor(f"{prefix}.ffn_down.weight", ffn_down)


STUDENT = TinyModelSpec("tiny-student", WORDS_A, seed=1)
MENTOR = TinyModelSpec("tiny-mentor", WORDS_A, seed=2)
OTHER_TOKENIZER = TinyModelSpec("tiny-other-tokenizer", WORDS_B, seed=3)
