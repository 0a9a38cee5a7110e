"""edge-collab eval / report / data fetch end to end on tiny models and local files."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import tiny_pair
from test_tasks import CHOICE, FREE, write_bigbench

from edge_collab.cli.main import cli
from edge_collab.evaluation.data_fetch import fetch_bigbench
from edge_collab.evaluation.humaneval_exec import build_program, passes
from edge_collab.evaluation.runner import read_results, run_method
from edge_collab.evaluation.tasks import load_task, select
from edge_collab.journal import read_records
from edge_collab.pair import CollabPair
from edge_collab.settings import GenerationSettings


@pytest.fixture
def small_task(tmp_path: Path) -> Path:
    examples = [dict(CHOICE, input=f"Question {i}: how many legs do horses have?") for i in range(4)]
    examples += [dict(FREE, input=f"Question {i}: what is 6 times 7?") for i in range(2)]
    return write_bigbench(tmp_path / "small", examples)


def run_eval(tiny_paths, task: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        cli,
        [
            "eval",
            str(task),
            *tiny_pair(tiny_paths),
            "--max-tokens",
            "24",
            "--out",
            str(out),
            *extra,
        ],
        catch_exceptions=False,
    )


def test_eval_writes_one_line_per_item_and_resumes(tiny_paths, small_task, tmp_path):
    out = tmp_path / "results"
    first = run_eval(tiny_paths, small_task, out, "--limit", "2", "--method", "student", "--method", "collab")
    assert first.exit_code == 0, first.output
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 2
    header, items = read_results(next(f for f in files if "__collab__" in f.name))
    assert header is not None and header["method"] == "collab" and header["probe_rate"] == 0.25
    assert len(items) == 2
    for record in items:
        for key in (
            "id",
            "prediction",
            "gold",
            "correct",
            "tokens_total",
            "tokens_mentor",
            "probes",
            "adoptions",
            "seconds",
            "hit_cap",
            "text",
        ):
            assert key in record
    again = run_eval(tiny_paths, small_task, out, "--limit", "5", "--method", "collab")
    assert again.exit_code == 0, again.output
    _, grown = read_results(next(f for f in files if "__collab__" in f.name))
    assert [r["id"] for r in grown[:2]] == [r["id"] for r in items]  # earlier answers kept, not redone
    assert len(grown) == 5 and len({r["id"] for r in grown}) == 5


def test_shards_side_by_side_fill_one_run(tiny_paths, small_task, tmp_path):
    """Two processes at once, --shard 1/2 and 2/2 into one folder: one header, every
    item once, the answers an unsharded run gives."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = [*tiny_pair(tiny_paths), "--max-tokens", "24", "--method", "collab"]
    assert run_eval(tiny_paths, small_task, whole, "--method", "collab").exit_code == 0
    command = [sys.executable, "-m", "edge_collab.cli", "eval", str(small_task), *common, "--out", str(parts)]
    shards = [subprocess.Popen([*command, "--shard", f"{k}/2"], stderr=subprocess.PIPE) for k in (1, 2)]
    for shard in shards:
        _, err = shard.communicate(timeout=300)
        assert shard.returncode == 0, err.decode()
    [file] = parts.glob("*.jsonl")
    assert len([r for _, r in read_records(file) if "id" not in r]) == 1  # one header
    _, records = read_results(file)
    [expected] = whole.glob("*.jsonl")
    assert expected.name == file.name  # sharding is not a setting of the run
    _, alone = read_results(expected)
    assert sorted((r["id"], r["text"]) for r in records) == sorted((r["id"], r["text"]) for r in alone)


def test_a_shard_must_be_k_of_n(tiny_paths, small_task, tmp_path):
    result = run_eval(tiny_paths, small_task, tmp_path, "--shard", "3/2")
    assert result.exit_code == 2 and "K/N" in result.output


def test_an_interrupted_run_loses_nothing_done(tiny_paths, small_task, tmp_path):
    task = load_task(str(small_task))
    items = select(task, "test")
    settings = GenerationSettings(max_new_tokens=16)
    out = tmp_path / "results"

    def interrupt_after_two(totals):
        if totals.done == 2:
            raise KeyboardInterrupt

    with CollabPair.open(str(tiny_paths["student"]), str(tiny_paths["mentor"]), settings=settings) as pair:
        with pytest.raises(KeyboardInterrupt):
            run_method(pair, task, items, "student", settings, out, "test", on_item=interrupt_after_two)
        path, totals = run_method(pair, task, items, "student", settings, out, "test")
    _, records = read_results(path)
    assert len(records) == len(items) == totals.done
    assert len({r["id"] for r in records}) == len(items)


def test_resume_grades_stored_replies_again_and_survives_a_torn_line(tiny_paths, small_task, tmp_path):
    task = load_task(str(small_task))
    items = select(task, "test")[:3]
    settings = GenerationSettings(max_new_tokens=8)
    out = tmp_path / "results"
    with CollabPair.open(str(tiny_paths["student"]), str(tiny_paths["mentor"]), settings=settings) as pair:
        path, _ = run_method(pair, task, items[:2], "student", settings, out, "test")
        header, records = read_results(path)
        # As if an older extraction had misread the first reply, and a crash had
        # cut the last line short.
        gold_letter = records[0]["gold_letter"]
        records[0]["text"] = f"Thinking...\nSo the option is \\(\\boxed{{{gold_letter}}}\\)."
        records[0]["prediction"], records[0]["correct"] = None, False
        lines = [json.dumps(header)] + [json.dumps(r) for r in records]
        path.write_text("\n".join(lines) + '\n{"type": "item", "id": "cut sho')
        path, totals = run_method(pair, task, items, "student", settings, out, "test")
    _, grown = read_results(path)
    assert totals.regraded == 1 and totals.done == 3
    assert grown[0]["correct"] is True and grown[0]["prediction"] == grown[0]["gold"]
    assert [r["id"] for r in grown] == [item.id for item in items]


def test_report_builds_tables_and_plots(tiny_paths, small_task, tmp_path):
    out = tmp_path / "results"
    result = run_eval(tiny_paths, small_task, out, "--method", "student", "--method", "mentor", "--method", "collab")
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(cli, ["report", str(out)], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "| small | student | 6 |" in report.output
    assert "student → collab" in report.output
    for name in ("report.md", "accuracy_vs_mentor_seconds.png", "throughput.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "accuracy_vs_mentor_seconds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = CliRunner().invoke(cli, ["report", str(out), "--json"]).output.splitlines()
    assert [json.loads(line)["method"] for line in lines] == ["student", "mentor", "collab"]
    again = run_eval(tiny_paths, small_task, out, "--method", "student", "--json")
    totals = json.loads(again.output.splitlines()[-1])
    assert totals["method"] == "student" and totals["items"] == 6 and 0 <= totals["accuracy"] <= 1


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "no results found" in result.output


def test_eval_of_a_malformed_task_file(tiny_paths, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    result = run_eval(tiny_paths, broken, tmp_path / "out")
    assert result.exit_code == 1
    assert "broken.json: not valid JSON" in result.output and "Traceback" not in result.output


def test_fetch_bigbench_extracts_only_the_named_tasks(tmp_path, isolated_data_dir):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in ("maths/easy/task.json", "maths/task.json", "other/task.json"):
            data = json.dumps({"examples": [FREE]}).encode()
            info = tarfile.TarInfo(f"bigbench-9.9/bigbench/benchmark_tasks/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    links = tmp_path / "links"
    links.mkdir()
    (links / "bigbench-9.9.tar.gz").write_bytes(archive.getvalue())
    package = ("bigbench", "9.9", "bigbench-9.9.tar.gz", hashlib.sha256(archive.getvalue()).hexdigest())
    folders = fetch_bigbench(["maths"], find_links=str(links), package=package)
    root = isolated_data_dir / "datasets" / "bigbench"
    assert folders == [root / "maths"]
    assert (root / "maths" / "easy" / "task.json").is_file() and not (root / "other").exists()
    assert json.loads((root / "maths" / "SOURCE.json").read_text())["package"] == "bigbench==9.9"
    assert len(load_task("maths").items) == 2
    wrong = (*package[:3], "0" * 64)
    with pytest.raises(Exception, match="does not match its pinned sha256"):
        fetch_bigbench(["maths"], find_links=str(links), package=wrong, force=True)


PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("def add(a, b):\n    return a + b\n", True),
        ("    return a + b\n", True),  # a body appended to the prompt
        ("def add(a, b):\n    return a - b\n", False),
        ("def add(a, b):\n    while True:\n        pass\n", False),  # the time limit ends it
        ("import socket\ndef add(a, b):\n    socket.create_connection(('127.0.0.1', 9))\n    return a + b\n", False),
    ],
)
def test_humaneval_execution(completion, expected):
    assert passes(build_program(PROMPT, completion, TEST, "add"), timeout_s=3) is expected


def test_comparison_rows_are_against_the_student_and_the_plain_collab_run(tmp_path):
    from edge_collab.evaluation.report import Run, comparison_table

    def run(method: str, **header: object) -> Run:
        base = {"task": "t", "method": method, "probe_rate": 0.25, "segment_tokens": 16, "verifier": "self"}
        items = {f"q{i}": {"correct": (i + len(method)) % 2 == 0} for i in range(4)}
        return Run({**base, **header}, items, tmp_path)

    runs = [
        run("student"),
        run("mentor"),
        run("collab", mentor_budget=0.18),  # listed first on purpose: not the reference
        run("collab"),
        run("cosd", cosd_alpha=0.5),
    ]
    rows = [line.split(" | ")[1] for line in comparison_table(runs).splitlines()[2:]]
    plain, budget = "collab ρ=0.25 k=16 self", "collab ρ=0.25 k=16 self budget 0.18"
    assert rows == [
        "student → mentor",
        f"student → {budget}",
        f"student → {plain}",
        "student → cosd alpha=0.5",
        f"mentor → {plain}",
        f"{plain} → {budget}",
        f"{plain} → cosd alpha=0.5",
    ]


def test_a_resumed_budget_run_continues_the_controller(tiny_paths, small_task, tmp_path):
    budget = ("--method", "collab", "--mentor-budget", "0.2", "--probe-rate", "0.5", "--verifier", "always-mentor")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_eval(tiny_paths, small_task, whole, *budget).exit_code == 0
    assert run_eval(tiny_paths, small_task, parts, "--limit", "3", *budget).exit_code == 0
    assert run_eval(tiny_paths, small_task, parts, *budget).exit_code == 0
    (_, unbroken), (_, resumed) = (read_results(next(folder.glob("*.jsonl"))) for folder in (whole, parts))
    assert len(unbroken) == 6
    assert [r["budget_pressure"] for r in resumed] == [r["budget_pressure"] for r in unbroken]
    assert [r["text"] for r in resumed] == [r["text"] for r in unbroken]
    assert len({r["budget_pressure"] for r in unbroken}) > 1  # the controller did move


def test_methods_in_one_budget_run_each_have_their_own_controller(tiny_paths, small_task, tmp_path):
    budget = ("--mentor-budget", "0.2", "--probe-rate", "0.5", "--verifier", "always-mentor")
    together, alone = tmp_path / "together", tmp_path / "alone"
    both = ("--method", "collab", "--method", "takeover")
    assert run_eval(tiny_paths, small_task, together, *both, *budget).exit_code == 0
    assert run_eval(tiny_paths, small_task, alone, "--method", "takeover", *budget).exit_code == 0
    (_, after_collab), (_, by_itself) = (
        read_results(next(folder.glob("*takeover*.jsonl"))) for folder in (together, alone)
    )
    assert [r["budget_pressure"] for r in after_collab] == [r["budget_pressure"] for r in by_itself]
    assert [r["text"] for r in after_collab] == [r["text"] for r in by_itself]


def test_each_budgeted_run_through_one_pair_starts_its_own_controller(tiny_paths, small_task, tmp_path):
    """A sweep runs its grid points through one pair; the second must not
    inherit the first's pressure."""
    from edge_collab.evaluation.report import load_runs

    def sweep(out: Path, lengths: str) -> dict[int, list[float]]:
        result = CliRunner().invoke(
            cli,
            ["sweep", str(small_task), *tiny_pair(tiny_paths), "--probe-rates", "0.5", "--segment-lengths", lengths]
            + ["--baselines", "", "--mentor-budget", "0.2", "--verifier", "always-mentor", "--split", "all"]
            + ["--max-tokens", "24", "--out", str(out)],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return {
            run.header["segment_tokens"]: [record["budget_pressure"] for record in run.items.values()]
            for run in load_runs([out])
        }

    together, alone = sweep(tmp_path / "together", "4,8"), sweep(tmp_path / "alone", "8")
    assert together[8] == alone[8]
    assert together[4][-1] != 0.0  # the first grid point did leave a pressure behind


def test_a_learned_verifier_s_run_is_named_by_the_file_s_contents(tiny_paths, small_task, tmp_path):
    """A retrained verifier at the same path starts new results instead of
    resuming answers that the old weights chose."""
    from verifier_data import synthetic_records

    from edge_collab_lab.training import export_onnx, load_records, train_mlp

    verifier = tmp_path / "v.onnx"
    out = tmp_path / "results"
    names = []
    for seed in (0, 1):
        data = load_records([synthetic_records(tmp_path / f"div{seed}.jsonl", seed=seed)])
        export_onnx(train_mlp(data.features, data.labels, epochs=50, seed=seed), verifier, {})
        result = run_eval(
            tiny_paths, small_task, out, "--limit", "1", "--method", "collab", "--verifier", str(verifier)
        )
        assert result.exit_code == 0, result.output
        newest = max(out.glob("*__collab__*.jsonl"), key=lambda f: f.stat().st_mtime_ns)
        header, items = read_results(newest)
        assert header is not None and len(items) == 1
        assert header["verifier_sha256"] == hashlib.sha256(verifier.read_bytes()).hexdigest()[:12]
        names.append(newest.name)
    assert names[0] != names[1]


def test_report_labels_a_learned_verifier_s_runs_by_its_file():
    from edge_collab.evaluation.report import Run

    header = {"method": "collab", "task": "t", "probe_rate": 0.25, "segment_tokens": 16, "mentor_budget": 0.18}
    first = Run({**header, "verifier": "onnx", "verifier_sha256": "b0f1210f73fe"}, {}, Path("a.jsonl"))
    second = Run({**header, "verifier": "onnx", "verifier_sha256": "7a7c1c262150"}, {}, Path("b.jsonl"))
    assert first.label == "collab ρ=0.25 k=16 onnx@b0f121 budget 0.18"
    assert second.label != first.label
    assert Run({**header, "verifier": "self"}, {}, Path("c.jsonl")).label == "collab ρ=0.25 k=16 self budget 0.18"


def test_an_audit_whose_batches_end_early_is_a_run_of_its_own(tiny_paths, small_task, tmp_path):
    """Its header says so (and so its file name and report label differ);
    batches that end only when full keep the header and file names they had."""
    from edge_collab.evaluation.report import Run

    audit = ["--limit", "1", "--method", "collab", "--probe-policy", "audit", "--mentor-budget", "0"]
    headers = []
    early_options = ["--audit-unsure-below", "0.6"]
    for extra in ([], early_options, [*early_options, "--audit-early-end", "token"]):
        out = tmp_path / f"results{len(headers)}"
        assert run_eval(tiny_paths, small_task, out, *audit, *extra).exit_code == 0
        (results,) = out.glob("*__collab__*.jsonl")
        header, _ = read_results(results)
        assert header is not None
        headers.append((header, results.name))
    (full, full_name), (early, early_name), (at_token, at_token_name) = headers
    assert "audit_unsure_below" not in full and early["audit_unsure_below"] == 0.6
    assert "audit_early_end" not in early and at_token["audit_early_end"] == "token"
    assert len({full_name, early_name, at_token_name}) == 3
    assert "(or at p<0.6)" in Run(early, {}, Path("a.jsonl")).label
    assert "(or at p<0.6, at the token)" in Run(at_token, {}, Path("c.jsonl")).label
    assert "(or at p<" not in Run(full, {}, Path("b.jsonl")).label
