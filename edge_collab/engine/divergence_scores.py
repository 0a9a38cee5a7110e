"""Both models' view of both segments at a divergence, for a learned verifier
(the features are defined in verifiers/features.py)."""

from __future__ import annotations

import numpy as np

from edge_collab.engine.answer import Answer
from edge_collab.engine.mentor import MentorLink
from edge_collab.engine.run import Run
from edge_collab.engine.sampling import TokenScore, token_logprobs
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.writer import ModelWriter, Written
from edge_collab.verifiers.features import DivergenceScores

_NO_SCORE = TokenScore(0.0, 0.0, 0.0)


def divergence_scores(
    run: Run,
    link: MentorLink,
    answer: Answer,
    writer: ModelWriter,
    word_start: int,
    split: int,
    mentor_segment: Written,
    mentor_scores: list[TokenScore],
    stats: GenerationStats,
) -> DivergenceScores:
    assert writer.scores is not None
    start = answer.prompt_length + split
    own = [writer.scores[position] for position in range(start, answer.prompt_length + len(answer))]
    at_split = writer.scores.get(start) or (own[0] if own else _NO_SCORE)
    mentor_at_split = mentor_scores[0] if mentor_scores else _NO_SCORE
    return DivergenceScores(
        student_own=np.array([score.logprob for score in own]),
        student_cross=_student_reads_mentor(run, link, writer, start, mentor_segment),
        mentor_own=np.array([score.logprob for score in mentor_scores]),
        mentor_cross=link.student_segment_logprobs,
        student_entropy=at_split.entropy,
        student_margin=at_split.margin,
        mentor_entropy=mentor_at_split.entropy,
        mentor_margin=mentor_at_split.margin,
        agreed_word_tokens=split - word_start,
        answer_position=split / run.settings.max_new_tokens,
        probes_so_far=stats.probes,
        adoptions_so_far=stats.adoptions,
    )


def _student_reads_mentor(
    run: Run, link: MentorLink, writer: ModelWriter, start: int, mentor_segment: Written
) -> np.ndarray:
    """The student's log-probabilities of the mentor's segment. The row
    predicting the split position is the one the student wrote its own first
    token from; the rest of the mentor's segment is read on a scratch branch."""
    mentor_tokens = link.as_student_tokens(mentor_segment)
    at_split_row = writer.recent_logits.get(start)
    if not mentor_tokens or at_split_row is None:
        return np.zeros(0)
    student = run.student
    student.begin_branch(start)
    try:
        rows = student.score(mentor_tokens, predict_first=False)
    finally:
        student.end_branch(keep=False)
    return token_logprobs(np.vstack([at_split_row[None, :], rows[:-1]]), mentor_tokens)
