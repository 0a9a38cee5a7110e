"""Each engine's reply to a scoring request, read into one shape
(remote/scoring.py), and served tokens matched to the student's through the
text (remote/audit.py). The llama-cpp-python replies have the shape its
server gives (its code, and tests/test_remote_mentor.py against the real
server); the vLLM and SGLang ones follow those engines' documented formats."""

from __future__ import annotations

import math

import pytest

from edge_collab.remote.audit import scored_starts
from edge_collab.remote.scoring import (
    ScoredToken,
    ScoreFormatError,
    engine_of,
    parse_llama_cpp_python,
    parse_sglang,
    parse_vllm,
    score_request,
    top_view,
)


def _echo(texts, own, tops, prompt_tokens):
    logprobs = {"tokens": texts, "text_offset": [0] * len(texts), "token_logprobs": own, "top_logprobs": tops}
    return {"choices": [{"text": "", "logprobs": logprobs}], "usage": {"prompt_tokens": prompt_tokens}}


def test_llama_cpp_python_rows_are_moved_one_token_on_for_a_model_without_bos():
    # Prompt "a b c" (3 tokens, no BOS) and one generated token. llama-cpp-python
    # lists the three prompt tokens, each with the row that predicts the *next*.
    tops = [None, {" c": -0.1, " x": -2.0}, {"!": -0.5, " c": -3.0}]
    reply = _echo(["a", " b", " c"], [None, -9.0, -9.0], tops, prompt_tokens=3)
    scored = parse_llama_cpp_python(reply, adds_bos=False)
    assert [t.text for t in scored] == ["a", " b", " c"]
    assert scored[0].top == {} and scored[1].top == {}  # nothing predicts the first two here
    assert scored[2].top == {" c": -0.1, " x": -2.0}  # the row after " b" predicts " c"
    assert scored[2].logprob == -0.1  # " c" is among its row's entries
    assert scored[1].logprob is None  # the -9.0 paired with it meant something else


def test_llama_cpp_python_rows_stay_for_a_model_with_bos_and_the_generated_token_is_dropped():
    # Prompt BOS + "a b" (3 tokens); the echo drops the BOS and adds the generated "!".
    tops = [None, {" b": -0.2, " z": -1.9}, {"!": -0.3}]
    reply = _echo(["a", " b", "!"], [None, -0.2, -0.3], tops, prompt_tokens=3)
    scored = parse_llama_cpp_python(reply, adds_bos=True)
    assert [t.text for t in scored] == ["a", " b"]
    assert scored[1] == ScoredToken(" b", -0.2, {" b": -0.2, " z": -1.9})


def test_vllm_prompt_logprobs_put_the_prompt_token_first():
    reply = {
        "choices": [
            {
                "text": "",
                "prompt_logprobs": [
                    None,
                    {
                        "17": {"logprob": -2.5, "rank": 3, "decoded_token": " b"},
                        "4": {"logprob": -0.1, "rank": 1, "decoded_token": " a"},
                    },
                ],
            }
        ]
    }
    scored = parse_vllm(reply)
    assert scored[0] == ScoredToken("", None, {})
    assert scored[1].text == " b" and scored[1].logprob == -2.5 and scored[1].top[" a"] == -0.1


def test_sglang_input_logprobs_come_as_triples():
    reply = {
        "text": "",
        "meta_info": {
            "input_token_logprobs": [[None, 1, "a"], [-0.7, 2, " b"]],
            "input_top_logprobs": [None, [[-0.7, 2, " b"], [-1.2, 9, " q"]]],
        },
    }
    scored = parse_sglang(reply)
    assert scored[1] == ScoredToken(" b", -0.7, {" b": -0.7, " q": -1.2})


@pytest.mark.parametrize("parse", [parse_vllm, parse_sglang, lambda data: parse_llama_cpp_python(data, False)])
def test_a_reply_without_the_scores_asked_for_is_a_format_error(parse):
    with pytest.raises(ScoreFormatError):
        parse({"choices": [{"text": "x"}]})


def test_requests_per_engine():
    path, body = score_request("sglang", "p", "m", top=5, skip_tokens=40)
    assert path == "/generate" and body["logprob_start_len"] == 40 and body["top_logprobs_num"] == 5
    assert body["sampling_params"]["max_new_tokens"] == 0
    path, body = score_request("vllm", "p", "m", top=5, skip_tokens=40)
    assert path == "/completions" and body["prompt_logprobs"] == 5 and body["model"] == "m"
    path, body = score_request("llama-cpp-python", "p", None, top=5, skip_tokens=40)
    assert body["echo"] is True and body["logprobs"] == 5 and "model" not in body
    with pytest.raises(ValueError):
        score_request("llama-server", "p", None, top=5, skip_tokens=0)
    assert [engine_of(o) for o in ("me", "llamacpp", "vllm", "sglang", None)] == [
        "llama-cpp-python",
        "llama-server",
        "vllm",
        "sglang",
        "unknown",
    ]


def test_top_view_reads_margin_and_a_lower_bound_on_entropy():
    view = top_view({" a": math.log(0.5), " b": math.log(0.3)})
    assert view is not None and view.text == " a" and view.floor == pytest.approx(math.log(0.3))
    assert view.margin == pytest.approx(0.2)
    exact = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert view.entropy == pytest.approx(exact)  # the unlisted 0.2 counted as one outcome
    assert top_view({}) is None


def test_served_tokens_are_placed_by_where_they_start_in_the_answer():
    prompt, answer = "<p>", "ab cd"
    scored = [
        ScoredToken("<p>", None, {}),
        ScoredToken("ab", None, {}),
        ScoredToken(" c", None, {}),
        ScoredToken("d", None, {}),
    ]
    assert {k: v.text for k, v in scored_starts(scored, prompt, answer).items()} == {0: "ab", 2: " c", 4: "d"}
    # A token whose text is not what stands there ends the walk: earlier ones are not placed.
    broken = [
        ScoredToken("ab", None, {}),
        ScoredToken("", None, {}),
        ScoredToken("?", None, {}),
        ScoredToken("d", None, {}),
    ]
    assert {k: v.text for k, v in scored_starts(broken, prompt, answer).items()} == {4: "d"}
