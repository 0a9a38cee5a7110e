"""The command line, through click's CliRunner, on tiny generated models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_collab.cli.main import cli


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def tiny_pair(tiny_paths: dict[str, Path], mentor: str = "mentor") -> list[str]:
    return ["--student", str(tiny_paths["student"]), "--mentor", str(tiny_paths[mentor]), "--n-ctx", "512"]


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    output = result.output.strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    for fragment in fragments:
        assert fragment in output, output


def test_run_streams_and_summarises(tiny_paths):
    result = invoke("run", "the cat sat", *tiny_pair(tiny_paths), "--max-tokens", "40", "--probe-rate", "0.5")
    assert result.exit_code == 0, result.output
    assert "mentor share" in result.output
    assert "\x1b[" not in result.output  # not a terminal: no colour codes


def test_an_audited_answer_says_how_many_batches_the_mentor_read(tiny_paths):
    result = invoke("run", "the cat sat", *tiny_pair(tiny_paths), "--max-tokens", "40", "--probe-policy", "audit")
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()[-1]
    assert " audits, " in summary and " probes, " not in summary


def test_run_json_has_the_documented_fields(tiny_paths):
    result = invoke(
        "run", "the cat sat", *tiny_pair(tiny_paths), "--max-tokens", "40", "--verifier", "always-mentor", "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert set(payload) == {"text", "pieces", "stats"}
    assert "".join(p["text"] for p in payload["pieces"]) == payload["text"]
    assert {p["source"] for p in payload["pieces"]} <= {"student", "mentor"}
    for key in (
        "mentor_share",
        "tokens_total",
        "tokens_mentor",
        "probes",
        "divergences",
        "adoptions",
        "verifier_calls",
        "mentor_decode_tokens",
        "mentor_prefill_tokens",
        "student_eval_tokens",
        "wall_s",
        "student_s",
        "mentor_s",
        "tokens_per_s",
    ):
        assert key in payload["stats"], key


def test_run_modes_are_comparable(tiny_paths):
    outputs = {}
    for mode in ("student", "collab"):
        result = invoke("run", "the cat sat", *tiny_pair(tiny_paths), "--method", mode, "--probe-rate", "0", "--json")
        outputs[mode] = json.loads(result.output)["text"]
    assert outputs["student"] == outputs["collab"]


def test_run_with_a_cross_tokenizer_mentor(tiny_paths):
    result = invoke("run", "the cat sat", *tiny_pair(tiny_paths, "other"), "--max-tokens", "40", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stats"]["tokens_total"] > 0


def test_missing_model_file(tmp_path):
    result = invoke("run", "hi", "--student", str(tmp_path / "nope.gguf"), "--mentor", str(tmp_path / "nope.gguf"))
    assert_one_line_error(result, "model file not found")


def test_file_that_is_not_gguf(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"\x00" * 64)
    result = invoke("run", "hi", "--student", str(junk), "--mentor", str(junk))
    assert_one_line_error(result, "not a GGUF model file")


def test_truncated_gguf(tmp_path, tiny_paths):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_paths["student"].read_bytes()[:5000])
    result = invoke("run", "hi", "--student", str(cut), "--mentor", str(tiny_paths["mentor"]))
    assert_one_line_error(result, "cannot load", "cut.gguf")


def test_unknown_preset(tiny_paths):
    result = invoke("run", "hi", "--student", "llama-9000", "--mentor", str(tiny_paths["mentor"]))
    assert_one_line_error(result, "unknown model 'llama-9000'")


def test_missing_default_pair_names_the_install_command():
    result = invoke("run", "hi")
    assert_one_line_error(result, "not installed", "edge-collab models install default")


def test_prompt_longer_than_the_context(tiny_paths):
    result = invoke("run", "the cat sat on the mat " * 100, *tiny_pair(tiny_paths)[:-2], "--n-ctx", "128")
    assert_one_line_error(result, "prompt is", "context holds")  # llama.cpp pads 128 up to its minimum


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--probe-rate", "1.5"),
        ("--segment-tokens", "0"),
        ("--max-tokens", "-3"),
        ("--temperature", "9"),
        ("--method", "both"),
    ],
)
def test_out_of_range_options(tiny_paths, option, value):
    result = CliRunner().invoke(cli, ["run", "hi", *tiny_pair(tiny_paths), option, value])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert option in result.output


def test_empty_prompt(tiny_paths):
    result = CliRunner().invoke(cli, ["run", "  ", *tiny_pair(tiny_paths)])
    assert result.exit_code == 2 and "prompt is empty" in result.output


def test_chat_turns_and_commands(tiny_paths):
    session = "hello there\n/stats\nthe cat\n/reset\n/bogus\n/quit\n"
    result = invoke("chat", *tiny_pair(tiny_paths), "--max-tokens", "20", input=session)
    assert result.exit_code == 0, result.output
    assert result.output.count("mentor share") >= 3  # two answers and /stats
    assert "(conversation cleared)" in result.output
    assert "unknown command /bogus" in result.output


def test_chat_outgrowing_its_context_drops_the_oldest_turns_and_says_so(tiny_paths):
    """As a new user tried it: six questions in a small context. The chat stays
    up, says what it dropped, refuses one message too long alone, and answers on."""
    question = "the cat sat on the mat and the dog\n"
    too_long = "the cat " * 200 + "\n"
    session = question * 6 + too_long + question + "/quit\n"
    result = invoke(
        "chat", *tiny_pair(tiny_paths), "--n-ctx", "160", "--max-tokens", "40", "--threads", "1", input=session
    )
    assert result.exit_code == 0, result.output
    assert "outgrew the model's context: the oldest 1 exchange was dropped" in result.output
    assert "The conversation is kept; /reset clears it." in result.output
    assert result.output.count("mentor share") == 7  # every question but the one too long was answered
    assert "Traceback" not in result.output


def test_chat_ends_on_end_of_input(tiny_paths):
    result = invoke("chat", *tiny_pair(tiny_paths), "--max-tokens", "10", input="hi\n")
    assert result.exit_code == 0


def test_models_list_shows_presets_and_state(isolated_data_dir):
    result = invoke("models", "list")
    assert result.exit_code == 0
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m"):
        assert name in result.output
    assert "not installed" in result.output
    assert "pair default" in result.output


def test_models_install_unknown_preset():
    result = invoke("models", "install", "gpt-5")
    assert_one_line_error(result, "unknown preset 'gpt-5'")


def test_bench_writes_a_report(tiny_paths, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke("bench", *tiny_pair(tiny_paths), "--prompts", "1", "--max-tokens", "24", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"student", "mentor", "collab"}
    assert report["collab_vs_student_speed"] > 0
    assert report["methods"]["student"]["student_eval_vs_ideal"] <= 1.0
    assert "| collab |" in result.output


def test_bench_measures_collab_taking_turns_where_the_mentor_has_a_thread_of_its_own(tiny_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_COLLAB_OVERLAP", "on")
    out = tmp_path / "bench.json"
    args = ("--prompts", "2", "--max-tokens", "32", "--probe-policy", "audit", "--verifier", "always-mentor")
    result = invoke("bench", *tiny_pair(tiny_paths), *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    methods = report["methods"]
    assert set(methods) == {"student", "mentor", "collab", "collab, random probes", "collab, in turn"}
    assert report["mentor_thread_of_its_own"] and report["collab_vs_in_turn_speed"] > 0
    assert methods["collab"]["student_written_ahead_tokens"] > 0
    assert methods["collab, in turn"]["student_written_ahead_tokens"] == 0
    for same in ("tokens", "mentor_share", "mentor_decode_tokens", "mentor_prefill_tokens", "adoptions"):
        assert methods["collab"][same] == methods["collab, in turn"][same], same
    assert "collab / collab taking turns tokens/s" in result.output


def test_run_reads_the_prompt_from_standard_input(tiny_paths):
    as_argument = invoke("run", "the cat sat", *tiny_pair(tiny_paths), "--max-tokens", "12", "--json")
    for args in (["-"], []):
        piped = invoke("run", *args, *tiny_pair(tiny_paths), "--max-tokens", "12", "--json", input="the cat sat")
        assert piped.exit_code == 0, piped.output
        assert json.loads(piped.output)["text"] == json.loads(as_argument.output)["text"]
    empty = invoke("run", "-", *tiny_pair(tiny_paths), input="  \n")
    assert_one_line_error(empty, "the prompt is empty")


def test_run_refuses_standard_input_that_is_not_utf8(tiny_paths):
    result = CliRunner().invoke(cli, ["run", "-", *tiny_pair(tiny_paths)], input=b"the \xff cat")
    assert_one_line_error(result, "standard input is not UTF-8")


def test_scripts_get_json_from_the_listing_commands(isolated_data_dir):
    listed = json.loads(invoke("models", "list", "--json").output)
    assert {p["name"] for p in listed["presets"]} >= {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    assert all(p["installed"] is False for p in listed["presets"])
    metadata = json.loads(invoke("verifier", "info", "--json").output)
    assert metadata["hidden_state_size"] == "896"


def test_output_into_a_closed_pipe_ends_quietly(tiny_paths):
    """`edge-collab ... | head -1`: the reader leaves early; no "Error: Broken pipe", no traceback."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "import sys; sys.stdout.close()"]  # a reader that reads nothing
    reader = subprocess.Popen(command, stdin=subprocess.PIPE)
    writer = subprocess.run(
        [sys.executable, "-m", "edge_collab.cli", "run", "the cat", "--student", str(tiny_paths["student"])]
        + ["--method", "student", "--max-tokens", "400", "--n-ctx", "512", "--threads", "1"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    reader.stdin.close()  # type: ignore[union-attr]
    reader.wait(timeout=10)
    assert writer.returncode in (0, 1) and "Error" not in writer.stderr and "Traceback" not in writer.stderr


def test_the_bench_s_paper_loop_is_the_shipped_loop_whatever_the_audit_is_set_to():
    """Audit settings such as one-token segments and no budget are the audit's
    own; the paper's loop beside it keeps the shipped segment length and budget."""
    from edge_collab.evaluation.bench import PAPER_LOOP, bench_rows
    from edge_collab.settings import DEFAULTS, GenerationSettings

    rows = bench_rows(GenerationSettings(probe_policy="audit", segment_tokens=1, mentor_budget=None))
    assert rows[PAPER_LOOP]["probe_policy"] == "random"
    assert rows[PAPER_LOOP]["segment_tokens"] == DEFAULTS.segment_tokens == 16
    assert rows[PAPER_LOOP]["mentor_budget"] == DEFAULTS.mentor_budget == 0.18
    assert rows["collab"] == {"method": "collab"}  # collab runs as set
