"""Thinking models: sections split from answers (whole and streamed), rendered
closed for a mentor that guides, switched by --think/--no-think for the
student, returned as reasoning_content by the server, dimmed or hidden by the
CLI, and left out of grading.

The two templates below behave as Qwen3's and DeepSeek-R1's do where thinking
is concerned (Qwen3: `enable_thinking=false` writes an empty, closed section;
R1: the generation prompt opens one); they are written for these tests, and
no real thinking model could be installed on these machines.
"""

from __future__ import annotations

import itertools
import json

import gguf
import pytest
from click.testing import CliRunner
from fakes import VOCABULARY, ScriptedBackend
from tiny_gguf import STUDENT, write_tiny_model

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.engine.local_mentor import LocalMentor
from edge_collab.thinking import ThinkingStream, final_answer, split_thinking

QWEN3_LIKE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
R1_LIKE = (
    "{{ bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{%- endif %}"
)
CLOSED = "<think>\n\n</think>\n\n"


def test_split_thinking():
    assert split_thinking("<think>\nhmm, two\n</think>\n\nAnswer: 2") == ("hmm, two", "Answer: 2")
    assert split_thinking("hmm, two</think>Answer: 2") == ("hmm, two", "Answer: 2")  # the prompt opened it
    assert split_thinking("<think>still thinking") == ("still thinking", "")
    assert split_thinking("Answer: 2") == ("", "Answer: 2")
    assert split_thinking("Answer: <think> is a tag") == ("", "Answer: <think> is a tag")
    assert final_answer("<think>Answer: 5</think>Answer: 4") == "Answer: 4"


@pytest.mark.parametrize(
    "text",
    ["<think>a b</think>c d", "  <think>\nx</think>\n\ny", "plain answer", "<thin k>", "<think>open", "a</think>"],
)
def test_a_streamed_split_matches_the_whole_one_wherever_the_chunks_break(text):
    for cuts in itertools.combinations(range(1, len(text)), 2):
        chunks = [text[: cuts[0]], text[cuts[0] : cuts[1]], text[cuts[1] :]]
        stream = ThinkingStream()
        runs = [run for chunk in chunks for run in stream.feed(chunk)] + stream.finish()
        thinking = "".join(part for kind, part in runs if kind == "thinking")
        answer = "".join(part for kind, part in runs if kind == "answer")
        whole_thinking, whole_answer = split_thinking(text)
        if text.lstrip().startswith("<think>"):
            assert (thinking.strip(), answer.lstrip()) == (whole_thinking, whole_answer), chunks
        else:
            assert thinking == "" and answer == text, chunks  # a stream only opens a section at its start


@pytest.fixture(scope="module")
def thinking_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thinking")
    models = {}
    for name, template in (("qwen3", QWEN3_LIKE), ("r1", R1_LIKE)):

        def mutate(metadata, tensors, template=template):
            metadata["tokenizer.chat_template"] = (template, gguf.GGUFValueType.STRING, None)

        path = write_tiny_model(folder / f"{name}.gguf", STUDENT, mutate)
        models[name] = LlamaCppBackend(path, ModelSettings(n_ctx=512, threads=1))
    yield models
    for model in models.values():
        model.close()


def rendered(model: LlamaCppBackend, tokens: list[int]) -> str:
    return model.detokenize(tokens).decode("utf-8")


QUESTION = [{"role": "user", "content": "What is 2 plus 2?"}]


@pytest.mark.parametrize("name", ["qwen3", "r1"])
def test_a_thinking_mentor_guiding_the_student_answers_with_its_section_closed(thinking_models, name):
    model = thinking_models[name]
    assert rendered(model, LocalMentor(model).chat_prompt(QUESTION, model)).endswith(CLOSED)


def test_the_students_switch_follows_each_template(thinking_models):
    qwen3, r1 = thinking_models["qwen3"], thinking_models["r1"]
    assert rendered(qwen3, qwen3.chat_prompt(QUESTION)).endswith("assistant\n")  # the model decides
    assert rendered(qwen3, qwen3.chat_prompt(QUESTION, thinking=True)).endswith("assistant\n")
    assert rendered(qwen3, qwen3.chat_prompt(QUESTION, thinking=False)).endswith(CLOSED)
    assert rendered(r1, r1.chat_prompt(QUESTION)).endswith("<think>\n")  # R1 always opens one
    assert rendered(r1, r1.chat_prompt(QUESTION, thinking=True)).endswith("<think>\n")
    assert rendered(r1, r1.chat_prompt(QUESTION, thinking=False)).endswith(CLOSED)


@pytest.mark.parametrize("name", ["qwen3", "r1"])
def test_earlier_answers_lose_their_thinking(thinking_models, name):
    model = thinking_models[name]
    history = [*QUESTION, {"role": "assistant", "content": "<think>secret sums</think>\n\n4"}, *QUESTION]
    text = rendered(model, model.chat_prompt(history, thinking=False))
    assert "secret sums" not in text and "4" in text


def test_a_non_thinking_template_is_unchanged_by_the_switch(tiny_paths):
    with LlamaCppBackend(tiny_paths["student"], ModelSettings(n_ctx=512, threads=1)) as model:
        assert model.chat_prompt(QUESTION, thinking=False) == model.chat_prompt(QUESTION)
        assert model.chat_prompt(QUESTION, thinking=True) == model.chat_prompt(QUESTION)


def test_collab_with_a_thinking_mentor_runs(thinking_models, tiny_paths):
    with LlamaCppBackend(tiny_paths["student"], ModelSettings(n_ctx=512, threads=1)) as student:
        pair = CollabPair(
            student, thinking_models["r1"], settings=GenerationSettings(max_new_tokens=16, probe_rate=1.0)
        )
        result = pair.generate("the cat")
    assert result.stats.tokens_total == 16 and result.stats.probes > 0


THINKER = [*VOCABULARY, "<think>", "</think>", " hmm", " hi"]
SCRIPT = "Q: hi A:<think> hmm the cat</think> the dog."


def thinking_pair() -> CollabPair:
    student = ScriptedBackend("thinker", SCRIPT, vocabulary=THINKER)
    return CollabPair(student, settings=GenerationSettings(method="student", max_new_tokens=40))


def test_the_server_returns_the_thinking_as_reasoning_content():
    from fastapi.testclient import TestClient

    from edge_collab.server.app import create_app

    body = {"messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app(thinking_pair()), base_url="http://127.0.0.1") as http:
        message = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
        streamed = http.post("/v1/chat/completions", json=body | {"stream": True}).text
    assert message["reasoning_content"] == "hmm the cat" and message["content"] == "the dog."
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"] for line in streamed.splitlines() if line.startswith("data: {")
    ]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert reasoning.strip() == "hmm the cat" and content.strip() == "the dog."


def test_grading_reads_the_answer_after_the_thinking():
    from edge_collab.evaluation.grading import grade
    from edge_collab.evaluation.prompts import build_question
    from edge_collab.evaluation.tasks import Item

    item = Item("t:0", "number", "What is 2 plus 2?", "4")
    question = build_question(item)
    assert grade(item, question, "<think>Answer: 5? no.</think>\nAnswer: 4").correct
    assert not grade(item, question, "<think>Answer: 4</think>\nAnswer: 5").correct
    assert not grade(item, question, "<think>Answer: 4 ... out of tokens").correct  # no final answer


def test_the_cli_shows_the_thinking_or_hides_it(monkeypatch):
    from edge_collab.cli import run_cmd

    class Opened:
        def __enter__(self):
            return thinking_pair()

        def __exit__(self, *args):
            return None

    monkeypatch.setattr(run_cmd, "open_pair", lambda *args, **kwargs: Opened())
    shown = CliRunner().invoke(run_cmd.run, ["hi", "--method", "student"])
    hidden = CliRunner().invoke(run_cmd.run, ["hi", "--method", "student", "--hide-thinking"])
    assert shown.exit_code == 0 and hidden.exit_code == 0, shown.output
    assert "hmm the cat" in shown.stdout and "the dog." in shown.stdout
    assert "hmm the cat" not in hidden.stdout and "the dog." in hidden.stdout


def test_a_prompt_that_opens_the_section_makes_the_answer_thinking_until_it_closes(thinking_models):
    """R1's generation prompt opens the section: what the student writes is
    thinking until `</think>` (here it never closes within 12 tokens)."""
    from fastapi.testclient import TestClient

    from edge_collab.server.app import create_app

    pair = CollabPair(thinking_models["r1"], settings=GenerationSettings(method="student", max_new_tokens=12))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app(pair), base_url="http://127.0.0.1") as http:
        message = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
        streamed = http.post("/v1/chat/completions", json=body | {"stream": True}).text
        unthinking = http.post("/v1/chat/completions", json=body | {"think": False}).json()["choices"][0]["message"]
    assert message["content"] == "" and message["reasoning_content"]
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"] for line in streamed.splitlines() if line.startswith("data: {")
    ]
    assert "".join(d.get("content", "") for d in deltas) == ""
    assert "".join(d.get("reasoning_content", "") for d in deltas).strip() == message["reasoning_content"]
    assert unthinking["content"] and "reasoning_content" not in unthinking  # --no-think: the section is closed
