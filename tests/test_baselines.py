"""The literature's baselines on the same engine, with tiny models."""

from __future__ import annotations

import pytest
from engine_helpers import generate

from edge_collab.errors import IncompatiblePairError


@pytest.mark.parametrize("method", ["cosd", "nudging", "rstitch", "average", "takeover"])
def test_each_baseline_runs_and_its_stats_add_up(student, mentor, method):
    first = generate(student, mentor, method=method, probe_rate=0.5)
    again = generate(student, mentor, method=method, probe_rate=0.5)
    stats = first.stats
    assert stats.tokens_total == 80 and first.text == again.text
    assert stats.tokens_student + stats.tokens_mentor == stats.tokens_total
    assert 0.0 <= stats.mentor_share <= 1.0
    assert "".join(p.text for p in first.pieces) == first.text
    assert stats.reevaluated_tokens == 0


def test_limits_of_the_parameters_give_one_model_alone(student, mentor):
    alone = generate(student, None, method="student").text
    mentor_alone = generate(student, mentor, method="mentor").text
    assert generate(student, mentor, method="nudging", nudging_gamma=0.0).text == alone
    assert generate(student, mentor, method="cosd", cosd_alpha=0.0).text == alone
    assert generate(student, mentor, method="rstitch", rstitch_tau=1.0).text == alone
    assert generate(student, mentor, method="rstitch", rstitch_tau=0.0).text == mentor_alone


def test_nudging_hands_over_more_as_gamma_grows(student, mentor):
    shares = [generate(student, mentor, method="nudging", nudging_gamma=g).stats.mentor_share for g in (0.0, 0.4, 0.99)]
    assert shares[0] == 0.0 and shares[0] <= shares[1] <= shares[2] and shares[2] > 0


def test_cosd_only_takes_tokens_that_differ(student, mentor):
    result = generate(student, mentor, method="cosd", cosd_alpha=1.0, cosd_beta=0.0)
    assert result.stats.tokens_mentor > 0


def test_takeover_adopts_every_divergence_up_to_a_sentence_end(student, mentor):
    result = generate(student, mentor, method="takeover", probe_rate=1.0, max_new_tokens=120)
    assert result.stats.divergences > 0
    assert result.stats.adoptions == result.stats.divergences
    assert result.stats.verifier_calls == 0


@pytest.mark.parametrize("method", ["cosd", "nudging", "rstitch", "average"])
def test_token_level_methods_refuse_different_tokenizers(student, other_tokenizer_mentor, method):
    with pytest.raises(IncompatiblePairError, match="one tokenizer"):
        generate(student, other_tokenizer_mentor, method=method)


def test_takeover_works_across_tokenizers(student, other_tokenizer_mentor):
    result = generate(student, other_tokenizer_mentor, method="takeover", probe_rate=1.0)
    assert result.stats.adoptions > 0


def test_sweep_runs_the_grid_and_draws_the_frontier(tiny_paths, tmp_path):
    from click.testing import CliRunner
    from test_cli import tiny_pair
    from test_tasks import FREE, write_bigbench

    from edge_collab.cli.main import cli
    from edge_collab.evaluation.report import load_runs

    task = write_bigbench(tmp_path / "tiny-task", [dict(FREE, input=f"What is {i} plus {i}?") for i in range(4)])
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            str(task),
            *tiny_pair(tiny_paths),
            "--probe-rates",
            "0.5,1",
            "--segment-lengths",
            "4",
            "--baselines",
            "student,cosd,takeover",
            "--mentor-budget",
            "0",  # off: the paper's fixed loop at each grid point
            "--limit",
            "3",
            "--split",
            "all",
            "--max-tokens",
            "16",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    for label in ("| student |", "| cosd alpha=0.5 |", "| takeover rate=0.25 |", "collab ρ=0.5 k=4", "collab ρ=1 k=4"):
        assert label in result.output, label
    runs = {
        (r.header["probe_rate"], r.header["segment_tokens"]): r
        for r in load_runs([out])
        if r.header["method"] == "collab"
    }
    assert set(runs) == {(0.5, 4), (1.0, 4)}
    # Each grid point runs with its own probe rate, not the one the pair was opened with.
    probes = {rate: sum(record["probes"] for record in run.items.values()) for (rate, _), run in runs.items()}
    assert probes[1.0] > probes[0.5] > 0
    budgeted = CliRunner().invoke(
        cli,
        ["sweep", str(task), *tiny_pair(tiny_paths), "--probe-rates", "0.5", "--segment-lengths", "4"]
        + ["--baselines", "", "--mentor-budget", "0.3", "--limit", "3", "--split", "all"]
        + ["--max-tokens", "16", "--out", str(out)],
        catch_exceptions=False,
    )
    assert budgeted.exit_code == 0, budgeted.output
    assert "collab ρ=0.5 k=4 self budget 0.3" in budgeted.output  # a run of its own beside the unbudgeted one
    assert "collab ρ=0.5 k=4 self |" in budgeted.output
    bad = CliRunner().invoke(cli, ["sweep", str(task), "--baselines", "magic"])
    assert bad.exit_code == 2 and "baselines among" in bad.output
