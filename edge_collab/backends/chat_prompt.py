"""Render a conversation with the model's own chat template (GGUF metadata).

Message contents are user data, never markup: the template is rendered with a
placeholder in place of each content, the template's own text is tokenized with
special tokens parsed, and each content is tokenized as plain text. A user who
types "<|im_end|>" gets those characters, not an end of turn.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edge_collab.errors import SettingsError
from edge_collab.thinking import CLOSE, OPEN, final_answer, prompt_opens_thinking

Tokenize = Callable[[bytes, bool], list[int]]  # (text, parse_special) -> ids

ROLES = ("system", "user", "assistant")
# Private-use characters around a random key and the message's index: a
# template (or a message) holding these characters itself cannot forge one.
_PLACEHOLDER = "\ue000{key}:{index}\ue001"
_PLACEHOLDER_RE = re.compile("\ue000([0-9a-f]+):(\\d+)\ue001")


def validate_messages(messages: Sequence[dict[str, str]]) -> None:
    if not messages:
        raise SettingsError("a conversation needs at least one message")
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise SettingsError(f"message {index}: role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(content, str):
            raise SettingsError(f"message {index}: content must be a string")
        as_utf8(content, f"message {index}")


def as_utf8(text: str, what: str) -> bytes:
    """`text` as UTF-8; a lone surrogate (from JSON's "\\ud800" or undecodable
    bytes on a command line) is the caller's error, not a crash."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SettingsError(
            f"{what} is not valid UTF-8 text: character {error.start} ({text[error.start]!a}) is a lone "
            "surrogate, from bytes that were not UTF-8 or a lone \\ud800-style escape"
        ) from None


ZERO_WIDTH_SPACE = "\u200b"


def defuse(text: str, special_texts: Sequence[str]) -> str:
    """`text` with every special token's text broken by a zero-width space
    after its first character, for a server that tokenizes text with special
    tokens parsed (llama-cpp-python's does): "<|im_end|>" typed by a user must
    stay characters there too, never become an end of turn."""
    for special in special_texts:
        if special in text:
            text = text.replace(special, special[0] + ZERO_WIDTH_SPACE + special[1:])
    return text


def _raise_template_error(message: str) -> None:
    raise jinja2.TemplateError(message)


def is_thinking_template(template: str | None) -> bool:
    """A template of a reasoning model: it writes or handles `<think>` sections."""
    return bool(template) and ("<think>" in template or "enable_thinking" in template)  # type: ignore[operator]


def render_segments(
    template: str | None,
    messages: Sequence[dict[str, str]],
    bos_text: str,
    eos_text: str,
    thinking: bool | None = None,
) -> list[tuple[str, bool]]:
    """The prompt as (text, is_markup) segments, markup first, ready for the reply.

    `thinking` (templates of reasoning models): None leaves the template's
    default; False renders the answer's thinking section closed and empty
    (the template's own `enable_thinking=False` where it has one, else a
    section the prompt opened is closed), so the model answers at once; True
    asks the template to let the model think. Earlier answers in the
    conversation lose their thinking, as the templates themselves drop it
    (they cannot see it here: contents reach them as placeholders)."""
    validate_messages(messages)
    if is_thinking_template(template):
        messages = [{**m, "content": final_answer(m["content"])} if m["role"] == "assistant" else m for m in messages]
    contents = [m["content"] for m in messages]
    key = secrets.token_hex(8)
    masked = [{"role": m["role"], "content": _PLACEHOLDER.format(key=key, index=i)} for i, m in enumerate(messages)]
    if template:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        try:
            extra = {} if thinking is None else {"enable_thinking": thinking}
            rendered = env.from_string(template).render(
                messages=masked,
                add_generation_prompt=True,
                bos_token=bos_text,
                eos_token=eos_text,
                raise_exception=_raise_template_error,
                **extra,
            )
        except jinja2.TemplateError as error:
            raise SettingsError(f"the model's chat template failed: {error}") from None
    else:
        # Base models without a template: a plain transcript they can continue.
        lines = [f"{m['role'].capitalize()}: {m['content']}\n" for m in masked]
        rendered = "".join(lines) + "Assistant:"
    if thinking is False and prompt_opens_thinking(rendered):
        # The prompt opened the answer's thinking (DeepSeek-R1's template always
        # does): close it, empty, as templates with a switch write it.
        rendered = rendered[: rendered.rfind(OPEN) + len(OPEN)] + "\n\n" + CLOSE + "\n\n"
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(rendered):
        if match.group(1) != key or int(match.group(2)) >= len(contents):
            continue  # the template's own text, not a placeholder of ours
        segments.append((rendered[position : match.start()], True))
        segments.append((contents[int(match.group(2))], False))
        position = match.end()
    segments.append((rendered[position:], True))
    return [(text, markup) for text, markup in segments if text]


def chat_tokens(
    template: str | None,
    messages: Sequence[dict[str, str]],
    tokenize: Tokenize,
    *,
    bos_text: str,
    eos_text: str,
    bos_token: int | None,
    thinking: bool | None = None,
) -> list[int]:
    """Token ids of the conversation; BOS is added when the model wants one and
    the template did not write it."""
    tokens: list[int] = []
    for text, is_markup in render_segments(template, messages, bos_text, eos_text, thinking):
        tokens.extend(tokenize(text.encode("utf-8"), is_markup))
    if bos_token is not None and (not tokens or tokens[0] != bos_token):
        tokens.insert(0, bos_token)
    return tokens
