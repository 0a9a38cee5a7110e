"""A served mentor's scores, matched to the student's answer positions
through the text (the audit policy with a remote mentor).

The server tokenizes the text it is sent for itself, so its tokens need not
be the student's, even with one tokenizer (the student's tokens come from
sampling, the server's from tokenizing). Positions are matched by where they
start in the answer's text: walking back from the end of the prompt, each
scored token's text must be the text found there; a student token gets the
mentor's view of the scored token that starts where it starts, and no view
where none does (a token inside one of the other's, or text the walk could
not follow, such as a character split over tokens). What the trigger reads
there (engine/trigger.py) comes from the engine's top log-probabilities
(remote/scoring.py top_view): exact for the most likely token and the margin;
the student's token's log-probability is exact where the engine gives it or
lists it, else the least listed one bounds it from above; the entropy counts
the unlisted mass as one outcome.
"""

from __future__ import annotations

from edge_collab.backends.base import ModelBackend
from edge_collab.backends.chat_prompt import defuse
from edge_collab.remote.scoring import ScoredToken, top_view
from edge_collab.verifiers.features import MentorView

AUDIT_TOP_LOGPROBS = 5  # the most likely tokens asked for at each position
AUDIT_SKIP_MARGIN = 16  # prompt tokens before a batch that are scored anyway (the server's count may differ)


def scored_starts(scored: list[ScoredToken], prompt_text: str, answer_text: str) -> dict[int, ScoredToken]:
    """Each scored token of the answer by the character offset, within the
    answer, where it starts; the walk from the end stops at the first token
    whose text is not the text there."""
    full = prompt_text + answer_text
    end = len(full)
    starts: dict[int, ScoredToken] = {}
    for token in reversed(scored):
        start = end - len(token.text)
        if start < len(prompt_text) or full[start:end] != token.text:
            break
        if token.text:
            starts[start - len(prompt_text)] = token
        end = start
    return starts


def student_views(
    scored: list[ScoredToken],
    prompt_text: str,
    answer_text: str,
    student: ModelBackend,
    answer_tokens: list[int],
    start: int,
) -> list[MentorView | None]:
    """The mentor's view at each answer position from `start` on."""
    starts = scored_starts(scored, prompt_text, answer_text)
    specials = student.special_texts()  # the answer was sent defused (backends/chat_prompt.py)
    views: list[MentorView | None] = []
    for index in range(start, len(answer_tokens)):
        token = answer_tokens[index]
        try:
            offset = len(defuse(student.detokenize(answer_tokens[:index]).decode("utf-8"), specials))
            piece = student.token_bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            views.append(None)  # inside a character: nothing to match
            continue
        scored_token = starts.get(offset)
        view = top_view(scored_token.top) if scored_token is not None else None
        if scored_token is None or view is None:
            views.append(None)
            continue
        # Agreement: the mentor's first choice is the student's token, or the
        # text the server's own token has there (other token boundaries).
        agrees = view.text in (piece, scored_token.text)
        own = scored_token.logprob_of(piece)
        if own is None and agrees:
            own = view.logprob
        views.append(
            MentorView(
                token=token if agrees else -1,
                top_logprob=view.logprob,
                student_logprob=view.floor if own is None else own,
                entropy=view.entropy,
                margin=view.margin,
            )
        )
    return views
