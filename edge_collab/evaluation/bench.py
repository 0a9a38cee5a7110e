"""Side-by-side benchmark: student alone, mentor alone and collab on the same
prompts in one process, so ratios are measured under the same conditions."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from edge_collab.engine.local_mentor import LocalMentor
from edge_collab.engine.result import GenerationResult
from edge_collab.pair import CollabPair
from edge_collab.settings import DEFAULTS, GenerationSettings

BENCH_PROMPTS = (
    "A shop sells pencils at 3 for $1. How much do 27 pencils cost? Think step by step.",
    "Write a Python function that returns the n-th Fibonacci number iteratively, and explain it briefly.",
    "Tom is twice as old as Ann. In 5 years their ages will add up to 40. How old is Ann now? Explain.",
    "Why does ice float on water? Answer in a short paragraph.",
)


@dataclass
class MethodTotals:
    method: str
    answers: int = 0
    tokens: int = 0
    mentor_tokens: int = 0
    wall_s: float = 0.0
    student_s: float = 0.0
    mentor_s: float = 0.0
    student_eval_tokens: int = 0
    student_ideal_tokens: int = 0  # prompt + every token the student wrote or adopted
    mentor_decode_tokens: int = 0
    mentor_prefill_tokens: int = 0
    mentor_read_ahead_tokens: int = 0  # of those, final tokens read ahead of need on the mentor's thread
    reevaluated_tokens: int = 0
    discarded_tokens: int = 0  # student tokens dropped when a mentor segment replaced them
    written_ahead_tokens: int = 0  # student tokens written while the mentor probed or read
    ahead_rolled_back_tokens: int = 0  # of those, dropped where the mentor's verdict rolled them back
    mentor_forward_passes: int = 0
    probes: int = 0
    adoptions: int = 0
    stop_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, result: GenerationResult) -> None:
        s = result.stats
        self.answers += 1
        self.tokens += s.tokens_total
        self.mentor_tokens += s.tokens_mentor
        self.wall_s += s.wall_s
        self.student_s += s.student_s
        self.mentor_s += s.mentor_s
        self.student_eval_tokens += s.student_eval_tokens
        if s.method != "mentor":
            self.student_ideal_tokens += s.prompt_tokens + s.student_decode_tokens + s.tokens_mentor
        self.mentor_decode_tokens += s.mentor_decode_tokens
        self.mentor_prefill_tokens += s.mentor_prefill_tokens
        self.mentor_read_ahead_tokens += s.mentor_read_ahead_tokens
        self.reevaluated_tokens += s.reevaluated_tokens
        self.discarded_tokens += s.student_discarded_tokens
        self.written_ahead_tokens += s.tokens_written_ahead
        self.ahead_rolled_back_tokens += s.tokens_ahead_rolled_back
        self.mentor_forward_passes += s.mentor_forward_passes
        self.probes += s.probes
        self.adoptions += s.adoptions
        self.stop_reasons[s.stop_reason] = self.stop_reasons.get(s.stop_reason, 0) + 1

    def report(self) -> dict[str, object]:
        inside = self.student_s + self.mentor_s
        return {
            "method": self.method,
            "answers": self.answers,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens / self.wall_s if self.wall_s else 0.0,
            "wall_s": self.wall_s,
            "inside_models_s": inside,
            "overhead_fraction": max(0.0, 1 - inside / self.wall_s) if self.wall_s else 0.0,
            "mentor_share": self.mentor_tokens / self.tokens if self.tokens else 0.0,
            "student_eval_tokens": self.student_eval_tokens,
            "student_ideal_tokens": self.student_ideal_tokens,
            "student_eval_vs_ideal": (
                self.student_eval_tokens / self.student_ideal_tokens if self.student_ideal_tokens else None
            ),
            "reevaluated_tokens": self.reevaluated_tokens,
            "student_discarded_tokens": self.discarded_tokens,
            "student_written_ahead_tokens": self.written_ahead_tokens,
            "student_ahead_rolled_back_tokens": self.ahead_rolled_back_tokens,
            "mentor_forward_passes": self.mentor_forward_passes,
            "mentor_s": self.mentor_s,
            "mentor_decode_tokens": self.mentor_decode_tokens,
            "mentor_prefill_tokens": self.mentor_prefill_tokens,
            "mentor_read_ahead_tokens": self.mentor_read_ahead_tokens,
            "probes": self.probes,
            "adoptions": self.adoptions,
            "stop_reasons": self.stop_reasons,
        }


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


PAPER_LOOP = "collab, random probes"
IN_TURN = "collab, in turn"
_OVERLAP = "overlap"  # a row's override of the mentor's thread, not a generation setting


def bench_rows(settings: GenerationSettings, mentor_overlaps: bool = False) -> dict[str, dict[str, object]]:
    """The rows of the benchmark and what each changes: one model alone, collab
    as set, and, when collab is set to another probe policy, the paper's loop
    (random word probes with the shipped segment length and budget, whatever
    the audit was set to) beside it, so the two are measured in the same run.
    Where the mentor in process has a thread of its own, collab taking turns
    is measured too: what the overlap gains."""
    rows: dict[str, dict[str, object]] = {
        "student": {"method": "student"},
        "mentor": {"method": "mentor"},
        "collab": {"method": "collab"},
    }
    if settings.probe_policy != "random":
        rows[PAPER_LOOP] = {
            "method": "collab",
            "probe_policy": "random",
            "segment_tokens": DEFAULTS.segment_tokens,
            "mentor_budget": DEFAULTS.mentor_budget,
        }
    if mentor_overlaps:
        rows[IN_TURN] = {"method": "collab", _OVERLAP: False}
    return rows


def _mentor_overlaps(pair: CollabPair) -> bool:
    mentor = pair.mentor
    return isinstance(mentor, LocalMentor) and mentor.overlaps_with(pair.student)


@contextmanager
def _mentor_thread(pair: CollabPair, overlap: bool | None) -> Iterator[None]:
    """The mentor's own thread turned on or off for one row (None: as it is)."""
    mentor = pair.mentor
    if overlap is None or not isinstance(mentor, LocalMentor):
        yield
        return
    before, mentor.overlap = mentor.overlap, overlap
    try:
        yield
    finally:
        mentor.overlap = before


def bench_row_count(pair: CollabPair) -> int:
    return len(bench_rows(pair.settings, _mentor_overlaps(pair)))


def run_bench(
    pair: CollabPair,
    prompts: Sequence[str] = BENCH_PROMPTS,
    *,
    on_answer: Callable[[str, int, GenerationResult], None] = lambda *_: None,
) -> dict[str, object]:
    """Run every method on every prompt with a cold cache each time (so evaluated
    token counts compare with the ideal), each row with budget controllers of
    its own (a run of its own, as if alone), and return the report."""
    overlaps = _mentor_overlaps(pair)
    rows = bench_rows(pair.settings, overlaps)
    totals = {name: MethodTotals(name) for name in rows}
    for index, prompt in enumerate(prompts):
        for name, overrides in rows.items():
            pair.student.truncate(0)
            if name != "student" and pair.mentor.backend is not None:
                pair.mentor.backend.truncate(0)
            changes = {key: value for key, value in overrides.items() if key != _OVERLAP}
            with pair.budget_scope(name), _mentor_thread(pair, overrides.get(_OVERLAP)):  # type: ignore[arg-type]
                result = pair.generate(prompt, stream=False, **changes)
            totals[name].add(result)
            on_answer(name, index, result)
    reports = {name: totals[name].report() for name in rows}
    speed = {name: float(report["tokens_per_s"]) for name, report in reports.items()}  # type: ignore[arg-type]
    settings = pair.settings
    return {
        "student": pair.student.name,
        "mentor": pair.mentor.name,
        "settings": {
            "probe_rate": settings.probe_rate,
            "segment_tokens": settings.segment_tokens,
            "max_new_tokens": settings.max_new_tokens,
            "seed": settings.seed,
            "verifier": pair.verifier_name,
            "probe_policy": settings.probe_policy,
            "audit_tokens": settings.audit_tokens,
            "audit_unsure_below": settings.audit_unsure_below,
            "audit_early_end": settings.audit_early_end,
            "trigger": settings.trigger,
        },
        "prompts": len(prompts),
        "mentor_thread_of_its_own": overlaps,
        "methods": reports,
        "collab_vs_student_speed": speed["collab"] / speed["student"] if speed["student"] else None,
        "collab_vs_paper_loop_speed": (speed["collab"] / speed[PAPER_LOOP] if speed.get(PAPER_LOOP) else None),
        "collab_vs_mentor_speed": speed["collab"] / speed["mentor"] if speed["mentor"] else None,
        "collab_vs_in_turn_speed": (speed["collab"] / speed[IN_TURN] if speed.get(IN_TURN) else None),
        "peak_rss_mib": peak_rss_mib(),
    }
