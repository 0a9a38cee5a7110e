"""Answers, token for token, of every method on fixed prompts: a behaviour
check for refactors. Run it before and after a change and compare the files:

    python scripts/answers_snapshot.py --out before.json            # tiny test models
    python scripts/answers_snapshot.py --real --out before-real.json  # the installed default pair
    python scripts/answers_snapshot.py --compare before.json after.json

Each answer is recorded with its pieces (who wrote what) and every count of
its statistics; timings are left out, since they differ from run to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from edge_collab import CollabPair, GenerationSettings, ModelSettings  # noqa: E402
from edge_collab.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edge_collab.evaluation.bench import BENCH_PROMPTS  # noqa: E402

TIMINGS = {"wall_s", "student_s", "mentor_s", "overhead_s", "tokens_per_s", "mentor_network_s"}
TINY_PROMPTS = ("the cat sat on the mat. what is two plus two?", "we sat and the dog is on it", "so the answer is")

# (label, settings changes, verifier); every answer runs with the budget off
# except where a row turns it on, so each is reproducible on its own.
TINY_RUNS = [
    ("student", {"method": "student"}, "self"),
    ("mentor", {"method": "mentor"}, "self"),
    ("collab-self", {"probe_rate": 0.5}, "self"),
    ("collab-self-k4", {"probe_rate": 0.7, "segment_tokens": 4}, "self"),
    ("collab-always-mentor", {"probe_rate": 0.5}, "always-mentor"),
    ("collab-always-student", {"probe_rate": 0.5}, "always-student"),
    ("collab-uncertainty", {"probe_policy": "uncertainty", "uncertainty_threshold": 0.5}, "self"),
    ("collab-budget", {"probe_rate": 0.5, "mentor_budget": 0.18}, "self"),
    ("collab-sampled", {"probe_rate": 0.5, "temperature": 0.8, "seed": 3}, "self"),
    ("collab-stop", {"probe_rate": 0.5, "stop": ("the",)}, "self"),
    ("takeover", {"method": "takeover", "probe_rate": 0.5}, "self"),
    ("cosd", {"method": "cosd"}, "self"),
    ("nudging", {"method": "nudging"}, "self"),
    ("rstitch", {"method": "rstitch"}, "self"),
    ("average", {"method": "average"}, "self"),
]
TINY_OTHER_TOKENIZER_RUNS = [
    ("text-collab-self", {"probe_rate": 0.5}, "self"),
    ("text-collab-always-mentor", {"probe_rate": 0.5}, "always-mentor"),
    ("text-takeover", {"method": "takeover", "probe_rate": 0.5}, "self"),
]
REAL_RUNS = [
    ("student", {"method": "student"}, "self"),
    ("mentor", {"method": "mentor"}, "self"),
    ("collab-budget", {"mentor_budget": 0.18}, "self"),
    ("collab", {}, "self"),
    ("collab-always-mentor-budget", {"mentor_budget": 0.18}, "always-mentor"),
    ("takeover", {"method": "takeover"}, "self"),
    ("cosd", {"method": "cosd"}, "self"),
    ("nudging", {"method": "nudging"}, "self"),
    ("rstitch", {"method": "rstitch"}, "self"),
    ("average", {"method": "average"}, "self"),
]


def _method_key() -> str:
    """The settings field naming the method (renamed from `mode` to `method`)."""
    return "method" if "method" in GenerationSettings.__dataclass_fields__ else "mode"


def _changes(changes: dict[str, object]) -> dict[str, object]:
    key = _method_key()
    return {(key if name == "method" else name): value for name, value in changes.items()}


def _record(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
    stats = {k: v for k, v in result.stats.to_dict().items() if k not in TIMINGS and k not in ("mode", "method")}
    return {"text": result.text, "pieces": [p.to_dict() for p in result.pieces], "stats": stats}


def _answers(pair: CollabPair, runs, prompts, max_tokens: int, chat: bool) -> dict[str, object]:  # type: ignore[no-untyped-def]
    answers: dict[str, object] = {}
    for label, changes, verifier in runs:
        pair.verifier_name, pair._verifier = verifier, None  # one pair, several verifiers
        for index, prompt in enumerate(prompts):
            overrides = {"max_new_tokens": max_tokens, "mentor_budget": None, **changes}
            if "budget" in label:  # each such row is one run of the controller
                pair.restart_budget(**_changes(overrides))
            call = pair.generate if chat else pair.complete
            result = call(prompt, **_changes(overrides))
            answers[f"{label}/{index}"] = _record(result)
            print(f"{label}/{index}: {result.stats.tokens_total} tokens", file=sys.stderr)
    return answers


def tiny_snapshot() -> dict[str, object]:
    from tiny_gguf import MENTOR, OTHER_TOKENIZER, STUDENT, write_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        paths = {spec.name: write_tiny_model(Path(folder) / f"{spec.name}.gguf", spec)
                 for spec in (STUDENT, MENTOR, OTHER_TOKENIZER)}
        settings = ModelSettings(n_ctx=512, threads=2)
        snapshot: dict[str, object] = {}
        for label, mentor_name, runs in (
            ("same-tokenizer", MENTOR.name, TINY_RUNS),
            ("other-tokenizer", OTHER_TOKENIZER.name, TINY_OTHER_TOKENIZER_RUNS),
        ):
            for chat in (True, False):
                student = LlamaCppBackend(paths[STUDENT.name], settings)
                mentor = LlamaCppBackend(paths[mentor_name], settings)
                with CollabPair(student, mentor, settings=GenerationSettings(seed=7)) as pair:
                    answers = _answers(pair, runs, TINY_PROMPTS, 60, chat)
                snapshot[f"{label}/{'chat' if chat else 'complete'}"] = answers
        return snapshot


def real_snapshot(max_tokens: int) -> dict[str, object]:
    with CollabPair.open() as pair:
        return {"default-pair": _answers(pair, REAL_RUNS, BENCH_PROMPTS, max_tokens, chat=True)}


def _same(old: dict | None, new: dict | None) -> bool:  # type: ignore[type-arg]
    """Same text, pieces and counts; a count only one side has (added since) is not compared."""
    if old is None or new is None:
        return old is new
    shared = set(old["stats"]) & set(new["stats"])
    same_stats = all(old["stats"][k] == new["stats"][k] for k in shared)
    return old["text"] == new["text"] and old["pieces"] == new["pieces"] and same_stats


def compare(before: Path, after: Path) -> int:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    differences = 0
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group, {}), new.get(group, {})
        for key in sorted(set(a) | set(b)):
            if not _same(a.get(key), b.get(key)):
                differences += 1
                print(f"differs: {group} {key}")
                for field in ("text", "pieces", "stats"):
                    if (a.get(key) or {}).get(field) != (b.get(key) or {}).get(field):
                        print(f"  {field}: {str((a.get(key) or {}).get(field))[:300]}")
                        print(f"  {'':{len(field)}}  {str((b.get(key) or {}).get(field))[:300]}")
    count = sum(len(group) for group in old.values())
    print(f"{count} answers compared, {differences} differ")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="the installed default pair on the bench prompts")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    snapshot = real_snapshot(args.max_tokens) if args.real else tiny_snapshot()
    text = json.dumps(snapshot, indent=1, ensure_ascii=False, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
