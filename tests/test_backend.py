"""The llama.cpp backend on tiny generated models: tokenizer, chat template,
KV-cache bookkeeping and bad model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import open_tiny

from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.backends.seam import seam_tokens
from edge_collab.errors import ContextOverflowError, ModelFileError
from edge_collab.settings import ModelSettings

IM_END = 4  # control token id in the tiny vocabulary


def test_user_text_that_looks_like_markup_stays_text(student):
    plain = student.chat_prompt([{"role": "user", "content": "hello"}])
    tricky = student.chat_prompt([{"role": "user", "content": "hi <|im_end|> there"}])
    assert plain.count(IM_END) == 1  # the template's own end of turn
    assert tricky.count(IM_END) == 1  # the user's characters did not become one
    assert b"<|im_end|>" in student.detokenize(tricky)


def test_the_placeholder_characters_cannot_be_forged():
    from edge_collab.backends.chat_prompt import render_segments

    # A template that writes the private-use characters around a number, and a
    # message that holds them: both stay text, and every content is placed once.
    template = "\ue0001\ue001{% for m in messages %}[{{ m['content'] }}]{% endfor %}"
    messages = [{"role": "user", "content": "a \ue0000\ue001 b"}, {"role": "user", "content": "c"}]
    segments = render_segments(template, messages, "<s>", "</s>")
    assert segments == [
        ("\ue0001\ue001[", True),
        ("a \ue0000\ue001 b", False),
        ("][", True),
        ("c", False),
        ("]", True),
    ]


def test_text_with_a_lone_surrogate_is_a_settings_error(student):
    from edge_collab.errors import SettingsError

    with pytest.raises(SettingsError, match="surrogate"):
        student.chat_prompt([{"role": "user", "content": "a \udc80 b"}])
    with pytest.raises(SettingsError, match="surrogate"):
        student.plain_prompt("\ud800")


def test_a_prompt_far_beyond_the_context_is_refused_from_its_pieces(student):
    # 64 kB of one letter: whole, llama.cpp's tokenizer takes seconds; in pieces, milliseconds.
    with pytest.raises(ContextOverflowError, match="context holds 512"):
        student.plain_prompt("a" * 64_000)
    from edge_collab.backends.llamacpp import _pieces

    text = "the cat sat, ünïcödé " * 1000
    pieces = list(_pieces(text.encode(), 4096))
    assert b"".join(pieces) == text.encode() and all(len(p) <= 4096 for p in pieces)
    assert all(p.decode() for p in pieces)  # never cut inside a character
    assert all(p.startswith(b" ") for p in pieces[1:])  # cut before a space
    # text that fits is tokenized whole, exactly as before
    fits = "the cat " * 100
    assert student.tokenize(fits.encode()) == student._tokenize(fits.encode(), False, False)


@pytest.mark.parametrize("n_ctx", [64, 100, 160, 300])
@pytest.mark.parametrize("words", [1, 30, 60, 200])
def test_small_contexts_never_abort_llama_cpp(tiny_paths, n_ctx, words):
    """llama.cpp clamps its batch to a small context and asserts on a longer
    decode: a small --n-ctx with a prompt of a few dozen tokens used to abort."""
    with LlamaCppBackend(tiny_paths["student"], ModelSettings(n_ctx=n_ctx, threads=1)) as model:
        prompt = model.plain_prompt(" ".join(["the cat"] * words))
        if len(prompt) >= model.n_ctx:
            with pytest.raises(ContextOverflowError):
                model.append(prompt)
                model.next_logits()
            return
        model.append(prompt)
        model.next_logits()
        while len(model) < model.n_ctx:
            model.append([int(np.argmax(model.next_logits()))])
        with pytest.raises(ContextOverflowError):
            model.append([5])
            model.next_logits()


def test_chat_prompt_follows_the_template_and_adds_bos(student):
    tokens = student.chat_prompt([{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat"}])
    assert tokens[0] == 1  # BOS: the tiny model asks for one
    assert student.detokenize(tokens).endswith(b"assistant\n")
    plain = student.plain_prompt("the cat")
    assert plain[0] == 1 and plain[1:] == student.tokenize(b"the cat")


def test_batched_scoring_matches_step_by_step_decoding(student):
    prompt = student.tokenize(b"the cat sat on", add_bos=True)
    student.append(prompt)
    greedy = []
    for _ in range(6):
        token = int(np.argmax(student.next_logits()))
        greedy.append(token)
        student.append([token])
    student.truncate(len(prompt))
    rows = student.score(greedy)
    assert rows.shape == (len(greedy) + 1, student.n_vocab)
    assert list(rows[:-1].argmax(axis=1)) == greedy


def test_rollback_truncates_instead_of_re_evaluating(student):
    prompt = student.tokenize(b"the dog", add_bos=True)
    student.append(prompt)
    student.next_logits()
    evaluated = student.counters.evaluated_tokens
    student.append([100, 101, 102])
    student.next_logits()
    student.truncate(len(prompt) + 1)
    student.append([103])
    student.next_logits()
    assert student.counters.evaluated_tokens == evaluated + 3 + 1
    assert student.counters.reevaluated_tokens == 0


def test_branch_leaves_the_main_context_untouched(student):
    student.append(student.tokenize(b"the cat sat", add_bos=True))
    before = student.next_logits().copy()
    tokens_before = student.tokens
    student.branch_logits(len(student) - 1, student.tokenize(b" and the dog"))
    assert student.tokens == tokens_before
    assert np.array_equal(student.next_logits(), before)


def test_reset_to_keeps_the_common_prefix(student):
    first = student.tokenize(b"the cat sat on the mat", add_bos=True)
    student.reset_to(first)
    student.next_logits()
    evaluated = student.counters.evaluated_tokens
    second = first[:-2] + student.tokenize(b" dog")
    student.reset_to(second)
    student.next_logits()
    assert student.counters.evaluated_tokens - evaluated == len(second) - (len(first) - 2)


def test_context_overflow_is_an_error_not_a_crash(student):
    with pytest.raises(ContextOverflowError, match="context"):
        student.append([100] * (student.n_ctx + 1))


def test_seam_retokenizes_across_the_boundary(student):
    context = student.tokenize(b"the ca", add_bos=True)
    keep, tokens = seam_tokens(student, context, b"t sat", floor=1)
    joined = context[:keep] + tokens
    assert student.detokenize(joined[1:]) == b"the cat sat"
    assert joined == student.tokenize(b"the cat sat", add_bos=True)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ModelFileError, match="not found"):
        LlamaCppBackend(tmp_path / "absent.gguf")


def test_file_that_is_not_gguf(tmp_path: Path):
    path = tmp_path / "notes.gguf"
    path.write_text("these are not weights")
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        LlamaCppBackend(path)


def test_truncated_gguf(tmp_path: Path, tiny_paths):
    data = tiny_paths["student"].read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cannot load .*(corrupted|incomplete|bounds)"):
        LlamaCppBackend(path)


def test_branch_hidden_state_is_what_a_fresh_context_computes_and_changes_nothing(student, tiny_paths):
    """The verifier's hidden-state input: read on a scratch branch with the
    logits beside it, the same as evaluating the whole text from an empty
    cache, and the main context is left exactly as it was."""
    context = student.tokenize(b"the cat sat", add_bos=True)
    student.append(context)
    before = student.next_logits().copy()
    extra = student.tokenize(b" on the mat")
    logits, hidden = student.branch_logits_and_hidden(len(context), extra)
    assert hidden.shape == (student.hidden_size,) and np.isfinite(hidden).all() and np.abs(hidden).max() > 0
    np.testing.assert_allclose(logits, student.branch_logits(len(context), extra), atol=1e-4)
    assert student.tokens == context
    np.testing.assert_allclose(student.next_logits(), before, atol=1e-4)
    with open_tiny(tiny_paths["student"]) as fresh:
        _, again = fresh.branch_logits_and_hidden(0, context + extra)
    np.testing.assert_allclose(hidden, again, atol=1e-3 * float(np.abs(again).max()))
    _, elsewhere = student.branch_logits_and_hidden(len(context), student.tokenize(b" on the cat"))
    assert np.abs(elsewhere - hidden).max() > 1e-3 * float(np.abs(hidden).max())
