"""The engine: one answer written by a method of engine/methods.py.

generation.py    start a generation, stream it
methods.py       the registry of methods
word_loop.py     the word-step loop (collab, takeover, one model alone)
consult.py       probe, consult, verify at one word
token_level.py   the literature's token-level baselines
probe_policy.py  when to probe; budget.py: the mentor-share controller
mentor.py        the Mentor and MentorLink protocols; local_mentor.py,
                 local_link.py: a mentor in process (remote/: over HTTP)
answer.py, writer.py, sampling.py, pieces.py, stats.py, result.py, run.py: the parts
"""
