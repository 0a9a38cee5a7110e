"""Scoring a prompt on a serving engine without generating from it: the
mentor's distribution at every token of the answer it reads, for the audit
policy (docs/remote-mentor.md, "Scoring").

Each engine asks and answers in its own format; this module turns all of them
into one list, a `ScoredToken` per prompt token, in order:

- **llama-cpp-python's server**: `/v1/completions` with `echo` and `logprobs`
  (the model must be loaded with `logits_all`, its server's default). Tested
  here. It builds the top log-probabilities of *every* prompt token by sorting
  the whole vocabulary in Python, on every request: 0.21 s a token for the
  default 152k-token mentor, measured here. For a model without a BOS token
  it also labels each row with the token before the one the row predicts;
  `parse_llama_cpp_python` undoes that shift.
- **vLLM**: `/v1/completions` with `prompt_logprobs` (such a request does not
  read its prefix cache: vLLM v1's `Request.get_skip_reading_prefix_cache`).
- **SGLang**: `/generate` with `return_logprob`, `logprob_start_len` (only the
  answer's tail is scored; the prefix cache is kept) and `top_logprobs_num`.

The vLLM and SGLang formats are built from their documentation and code and
are not tested against the real engines (neither installs on these machines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LLAMA_CPP_PYTHON, LLAMA_SERVER, VLLM, SGLANG, UNKNOWN = "llama-cpp-python", "llama-server", "vllm", "sglang", "unknown"
SCORING_ENGINES = (LLAMA_CPP_PYTHON, VLLM, SGLANG)

# /v1/models' owned_by, per engine (each engine's own model card).
_OWNERS = {"me": LLAMA_CPP_PYTHON, "llamacpp": LLAMA_SERVER, "vllm": VLLM, "sglang": SGLANG}


def engine_of(owned_by: object) -> str:
    return _OWNERS.get(str(owned_by), UNKNOWN)


class ScoreFormatError(ValueError):
    """The engine's reply does not have the scoring fields asked for."""


@dataclass(frozen=True)
class ScoredToken:
    """One prompt token as the engine read it: its text, and the distribution
    the engine had just before it (`top`: the most likely next tokens' texts
    and log-probabilities; `logprob`: this token's own, None where not given)."""

    text: str
    logprob: float | None
    top: dict[str, float]

    def logprob_of(self, text: str) -> float | None:
        if text == self.text and self.logprob is not None:
            return self.logprob
        return self.top.get(text)


def score_request(engine: str, prompt: str, model: str | None, top: int, skip_tokens: int) -> tuple[str, dict]:  # type: ignore[type-arg]
    """(path, body) of a request that scores `prompt`, with the `top` most
    likely tokens at each position. The first `skip_tokens` tokens need no
    scores (SGLang leaves them out; the others score the whole prompt)."""
    if engine == SGLANG:
        return "/generate", {
            "text": prompt,
            "sampling_params": {"max_new_tokens": 0, "temperature": 0.0},
            "return_logprob": True,
            "logprob_start_len": max(0, skip_tokens),
            "top_logprobs_num": top,
            "return_text_in_logprobs": True,
        }
    body: dict[str, object] = {"prompt": prompt, "max_tokens": 1, "temperature": 0.0}
    if engine == LLAMA_CPP_PYTHON:
        body.update(echo=True, logprobs=top)
    elif engine == VLLM:
        body.update(prompt_logprobs=top)
    else:
        raise ValueError(f"{engine} cannot score a prompt")
    if model:
        body["model"] = model
    return "/completions", body


def parse_llama_cpp_python(data: dict, adds_bos: bool) -> list[ScoredToken]:  # type: ignore[type-arg]
    """choices[0].logprobs of an echo: a text, a log-probability and a top dict
    per token. llama-cpp-python pairs row i of the logits (the distribution
    after token i) with the i-th token *after dropping a leading BOS*: right for
    a model that adds one, one token off for one that does not (Qwen's). There,
    each row is moved one token on, and a token's own log-probability is known
    only where its text is among its row's entries (the value paired with it was
    its probability as the token after itself)."""
    try:
        logprobs = data["choices"][0]["logprobs"]
        texts, own, tops = logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"]
        prompt_tokens = int(data["usage"]["prompt_tokens"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise ScoreFormatError("no echoed logprobs") from None
    if not (len(texts) == len(own) == len(tops)):
        raise ScoreFormatError("echoed logprobs of different lengths")
    rows = [{str(k): float(v) for k, v in t.items()} if isinstance(t, dict) else {} for t in tops]
    if adds_bos:
        # The prompt's tokens after the BOS, then the one generated (if any): drop it.
        count = prompt_tokens - 1
        return [
            ScoredToken(str(text), None if value is None else float(value), row)
            for text, value, row in zip(texts[:count], own[:count], rows[:count], strict=True)
        ]
    count = min(prompt_tokens, len(texts))
    shifted = [{}, *rows[: count - 1]]
    return [ScoredToken(str(text), row.get(text), row) for text, row in zip(texts[:count], shifted, strict=True)]


def parse_vllm(data: dict) -> list[ScoredToken]:  # type: ignore[type-arg]
    """choices[0].prompt_logprobs: per prompt token None (the first) or
    {token id: {"logprob", "rank", "decoded_token"}}, holding the token itself
    and the top ones. Ids are not known here, so the token's own entry is the
    one vLLM lists first (it puts the prompt token first)."""
    try:
        positions = data["choices"][0]["prompt_logprobs"]
        scored: list[ScoredToken] = []
        for entry in positions:
            if entry is None:
                scored.append(ScoredToken("", None, {}))
                continue
            values = list(entry.values())
            own = values[0]
            top = {str(v["decoded_token"]): float(v["logprob"]) for v in values}
            scored.append(ScoredToken(str(own["decoded_token"]), float(own["logprob"]), top))
        return scored
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise ScoreFormatError("no prompt_logprobs") from None


def parse_sglang(data: dict) -> list[ScoredToken]:  # type: ignore[type-arg]
    """meta_info.input_token_logprobs: [logprob, id, text] per scored prompt
    token; input_top_logprobs: the same position's top [logprob, id, text]
    triples (None where there are none)."""
    try:
        meta = data["meta_info"]
        own, tops = meta["input_token_logprobs"], meta["input_top_logprobs"]
        scored = []
        for (value, _, text), top in zip(own, tops, strict=True):
            row = {str(t): float(v) for v, _, t in (top or [])}
            scored.append(ScoredToken(str(text), None if value is None else float(value), row))
        return scored
    except (KeyError, IndexError, TypeError, ValueError):
        raise ScoreFormatError("no input logprobs") from None


def parse_scores(engine: str, data: dict, adds_bos: bool = False) -> list[ScoredToken]:  # type: ignore[type-arg]
    """The reply to `score_request(engine, ...)`, read in that engine's format
    (`adds_bos`: llama-cpp-python's model starts prompts with a BOS token)."""
    if engine == SGLANG:
        return parse_sglang(data)
    if engine == VLLM:
        return parse_vllm(data)
    return parse_llama_cpp_python(data, adds_bos)


@dataclass(frozen=True)
class TopView:
    """What a row of top log-probabilities says: the most likely text and its
    log-probability, the margin between the first two probabilities and the
    entropy, counting the mass outside the row as one more outcome (a lower
    bound on the true entropy)."""

    text: str
    logprob: float
    margin: float
    entropy: float
    floor: float  # the least log-probability listed: a bound for a token not in the row


def top_view(row: dict[str, float]) -> TopView | None:
    if not row:
        return None
    ranked = sorted(row.items(), key=lambda item: item[1], reverse=True)
    probabilities = [math.exp(v) for _, v in ranked]
    rest = max(0.0, 1.0 - sum(probabilities))
    entropy = -sum(p * math.log(p) for p in [*probabilities, rest] if p > 0.0)
    second = probabilities[1] if len(probabilities) > 1 else 0.0
    return TopView(ranked[0][0], ranked[0][1], probabilities[0] - second, entropy, ranked[-1][1])
