"""Statistics of one generation, as defined in docs/method.md, "Metrics"."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class GenerationStats:
    method: str = "collab"
    stop_reason: str = ""  # eos | length | stop | repeat | context
    prompt_tokens: int = 0
    tokens_total: int = 0  # answer tokens, counted in the writer's (student's) tokens
    tokens_student: int = 0
    tokens_mentor: int = 0  # answer tokens that came from adopted mentor segments
    mentor_share: float = 0.0  # tokens_mentor / tokens_total
    probes: int = 0
    audits: int = 0  # batches the mentor read under the audit policy
    divergences: int = 0
    adoptions: int = 0
    verifier_calls: int = 0
    verifier_off_choice: int = 0  # self verifier's raw next token was neither A nor B
    mentor_decode_tokens: int = 0  # every token the mentor wrote, adopted or not
    mentor_prefill_tokens: int = 0  # tokens the mentor read in batches (prompt, catch-up, probed words)
    mentor_read_ahead_tokens: int = 0  # of those, final tokens read ahead of need on its own thread (audit)
    student_eval_tokens: int = 0  # tokens the student evaluated on its main sequence
    student_decode_tokens: int = 0  # tokens the student wrote, kept or not
    verifier_eval_tokens: int = 0  # tokens evaluated on scratch branches for verifier prompts
    reevaluated_tokens: int = 0  # tokens either model evaluated a second time at the same place
    student_discarded_tokens: int = 0  # student tokens dropped when a mentor segment replaced them
    tokens_written_ahead: int = 0  # student tokens written while a served mentor's probe was in flight
    tokens_ahead_rolled_back: int = 0  # of those, tokens rolled back because the mentor disagreed
    mentor_forward_passes: int = 0  # the mentor's forward passes: one per batch read or token decoded
    mentor_round_trips: int = 0  # remote mentor: requests sent (retries included)
    mentor_network_s: float = 0.0  # remote mentor: time waiting on the network and the server
    mentor_failures: int = 0  # remote mentor: failed requests (time-outs, HTTP errors, bad replies)
    mentor_skipped_probes: int = 0  # remote mentor: probes skipped after failures or by the circuit breaker
    audit_unmatched_tokens: int = 0  # remote audit: audited tokens at which no mentor token starts (not judged)
    probe_level: float = 0.0  # probe rate (random) or entropy threshold (uncertainty) at the end
    budget_pressure: float = 0.0  # the mentor-budget controller's pressure at the end (0 without one)
    wall_s: float = 0.0
    student_s: float = 0.0  # time inside the student model (verifier prompts included)
    mentor_s: float = 0.0  # time inside the mentor model
    overhead_s: float = 0.0  # wall time outside both models: orchestration
    tokens_per_s: float = 0.0

    def finish(self) -> None:
        """Derive the ratios from the counts."""
        self.tokens_student = self.tokens_total - self.tokens_mentor
        self.mentor_share = self.tokens_mentor / self.tokens_total if self.tokens_total else 0.0
        self.overhead_s = max(0.0, self.wall_s - self.student_s - self.mentor_s)
        self.tokens_per_s = self.tokens_total / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def mentor_trouble(self) -> str | None:
        """In words, when the mentor failed this answer (None when it did not):
        a collab answer written without a working mentor is the student's
        alone, and must not pass for guided."""
        if not (self.mentor_failures or self.mentor_skipped_probes):
            return None
        if self.mentor_round_trips <= self.mentor_failures:
            return (
                f"the mentor failed every request ({self.mentor_failures}; {self.mentor_skipped_probes} probes "
                "skipped): the student wrote this answer alone"
            )
        return (
            f"the mentor failed {self.mentor_failures} of {self.mentor_round_trips} requests "
            f"({self.mentor_skipped_probes} probes skipped): parts of this answer had no guidance"
        )

    def summary(self) -> str:
        return (
            f"{self.tokens_total} tokens, mentor share {self.mentor_share:.1%} "
            f"({self.tokens_mentor} tokens), {self.probes} probes, {self.divergences} divergences, "
            f"{self.adoptions} adoptions, {self.tokens_per_s:.1f} tokens/s, stop: {self.stop_reason}"
        )
