"""Turning result files into a table, pairwise comparisons and plots."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_collab.engine.methods import METHODS
from edge_collab.errors import EdgeCollabError
from edge_collab.evaluation.runner import mentor_failed, read_results
from edge_collab.plotting import pyplot

METHOD_COLOURS = {
    "student": "tab:blue",
    "mentor": "tab:orange",
    "collab": "tab:green",
    "takeover": "tab:red",
    "cosd": "tab:purple",
    "nudging": "tab:brown",
    "rstitch": "tab:pink",
    "average": "tab:olive",
}


@dataclass
class Run:
    header: dict  # type: ignore[type-arg]
    items: dict[str, dict]  # type: ignore[type-arg]
    path: Path

    @property
    def task(self) -> str:
        return str(self.header["task"])

    @property
    def mentor_budget(self) -> float | None:
        return self.header.get("mentor_budget")  # type: ignore[no-any-return]

    @property
    def probe_policy(self) -> str:
        return str(self.header.get("probe_policy", "random"))  # absent from runs recorded before it existed

    @property
    def is_fixed_loop(self) -> bool:
        """Collab as in the paper: random probes, no budget controller."""
        return self.header["method"] == "collab" and self.probe_policy == "random" and self.mentor_budget is None

    @property
    def label(self) -> str:
        method = str(self.header["method"])
        known = METHODS.get(method)
        budget = f" budget {self.mentor_budget:g}" if self.mentor_budget is not None else ""
        first = known.run_parameters[0] if known is not None and known.run_parameters else None
        if method != "collab" and first is not None and first in self.header:
            return f"{method} {first.split('_')[-1]}={self.header[first]:g}{budget}"
        if method != "collab":
            return method
        h = self.header
        probing = {
            "uncertainty": lambda: f"H≥{h['uncertainty_threshold']:g}",
            "audit": lambda: f"audit B={h['audit_tokens']}{_unsure(h)} {h['trigger']}>{h['trigger_threshold']:g}",
        }.get(self.probe_policy, lambda: f"ρ={h['probe_rate']:g}")()
        # A learned verifier's name says nothing of its weights; its file's hash does.
        verifier = f"{h['verifier']}@{h['verifier_sha256'][:6]}" if "verifier_sha256" in h else h["verifier"]
        return f"collab {probing} k={h['segment_tokens']} {verifier}{budget}"

    def total(self, key: str) -> float:
        return float(sum(r[key] for r in self.items.values()))

    @property
    def answers_with_mentor_failures(self) -> int:
        """Answers in which the mentor failed requests."""
        return sum(mentor_failed(record) for record in self.items.values())

    @property
    def accuracy(self) -> float:
        return self.total("correct") / len(self.items) if self.items else 0.0

    @property
    def mentor_share(self) -> float:
        tokens = self.total("tokens_total")
        return self.total("tokens_mentor") / tokens if tokens else 0.0


def _unsure(header: dict) -> str:  # type: ignore[type-arg]
    """How an audit's batches end early, where they do."""
    below = header.get("audit_unsure_below", 0.0)
    at_token = ", at the token" if header.get("audit_early_end", "word") == "token" else ""
    return f" (or at p<{below:g}{at_token})" if below else ""


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if total == 0:
        return 0.0, 0.0
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def load_runs(folders: Iterable[Path]) -> list[Run]:
    runs = []
    for folder in folders:
        if not folder.exists():
            raise EdgeCollabError(f"no such results folder: {folder}")
        files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
        for path in files:
            header, items = read_results(path)
            if header is None:
                continue
            unique: dict[str, dict] = {}  # type: ignore[type-arg]
            for record in items:
                unique.setdefault(record["id"], record)
            if unique:
                runs.append(Run(header, unique, path))
    if not runs:
        raise EdgeCollabError("no results found in " + ", ".join(str(f) for f in folders))
    # The two references first, then the registry's order; methods it no longer knows last.
    order = ["student", "mentor", *(name for name in METHODS if name not in ("student", "mentor"))]
    position = {name: index for index, name in enumerate(order)}
    return sorted(runs, key=lambda r: (r.task, position.get(str(r.header["method"]), len(order)), r.label))


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def run_summary(run: Run) -> dict[str, object]:
    """A run's figures as the results table shows them, as plain data."""
    n = len(run.items)
    low, high = wilson_interval(int(run.total("correct")), n)
    tokens, seconds = run.total("tokens_total"), run.total("seconds")
    return {
        "task": run.task,
        "method": str(run.header["method"]),
        "label": run.label,
        "items": n,
        "accuracy": run.accuracy,
        "accuracy_95ci": [low, high],
        "mentor_share": run.mentor_share,
        "mentor_decode_per_answer_token": run.total("mentor_decode_tokens") / tokens if tokens else 0.0,
        "answers_with_mentor_failures": run.answers_with_mentor_failures,
        "tokens_per_s": tokens / seconds if seconds else 0.0,
        "seconds_per_item": seconds / n,
        "mentor_seconds_per_item": run.total("mentor_s") / n,
        "hit_cap": run.total("hit_cap") / n,
        "results": str(run.path),
    }


def results_table(runs: Sequence[Run]) -> str:
    lines = [
        "| task | method | items | accuracy % (95% CI) | mentor share % | mentor decode / answer token "
        "| mentor read / answer token | mentor passes / answer token | tokens/s | s/item | mentor s/item | hit cap % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        n = len(run.items)
        low, high = wilson_interval(int(run.total("correct")), n)
        tokens, seconds = run.total("tokens_total"), run.total("seconds")
        decode_ratio = run.total("mentor_decode_tokens") / tokens if tokens else 0.0
        read_ratio = run.total("mentor_prefill_tokens") / tokens if tokens else 0.0
        lines.append(
            f"| {run.task} | {run.label} | {n} | {_percent(run.accuracy)} ({_percent(low)}–{_percent(high)}) "
            f"| {_percent(run.mentor_share)} | {decode_ratio:.2f} | {read_ratio:.2f} | {_passes(run, tokens)} "
            f"| {tokens / seconds if seconds else 0:.1f} "
            f"| {seconds / n:.1f} | {run.total('mentor_s') / n:.1f} | {_percent(run.total('hit_cap') / n)} |"
        )
    return "\n".join(lines)


def _passes(run: Run, tokens: float) -> str:
    """The mentor's forward passes per answer token: one per token it decoded
    and one per batch it read (recorded since the audit policy came; "-" before)."""
    if not tokens or any("mentor_forward_passes" not in record for record in run.items.values()):
        return "-"
    return f"{run.total('mentor_forward_passes') / tokens:.2f}"


@dataclass(frozen=True)
class Paired:
    """Two runs of a task on the items both answered."""

    common: list[str]
    right_a: int
    right_b: int
    fixed: int  # right in B where A was wrong
    broken: int  # wrong in B where A was right


def paired(a: Run, b: Run) -> Paired:
    common = sorted(set(a.items) & set(b.items))
    right_a = [bool(a.items[k]["correct"]) for k in common]
    right_b = [bool(b.items[k]["correct"]) for k in common]
    return Paired(
        common,
        sum(right_a),
        sum(right_b),
        sum(rb and not ra for ra, rb in zip(right_a, right_b, strict=True)),
        sum(ra and not rb for ra, rb in zip(right_a, right_b, strict=True)),
    )


def comparison_table(runs: Sequence[Run]) -> str:
    """Each method against the student (with the share of the student-to-mentor
    gap it recovers), the mentor against the reference collab run, and every
    other method against that reference: the rows a reader compares, not all
    pairs (nine methods on a task would make 36)."""
    lines = [
        "| task | A → B | common items | acc A % | acc B % | fixed by B | broken by B | gap recovered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    for task, task_runs in by_task.items():
        student = _first(task_runs, "student")
        mentor = _first(task_runs, "mentor")
        for a, b in _comparison_pairs(task_runs, student, mentor):
            pair = paired(a, b)
            common = pair.common
            if not common:
                continue
            acc_a, acc_b = pair.right_a / len(common), pair.right_b / len(common)
            gap = "-"
            if a is student and b is not mentor and mentor is not None:
                shared = sorted(set(common) & set(mentor.items))
                acc_m = sum(mentor.items[k]["correct"] for k in shared) / len(shared) if shared else 0.0
                acc_s = sum(student.items[k]["correct"] for k in shared) / len(shared) if shared else 0.0
                acc_c = sum(b.items[k]["correct"] for k in shared) / len(shared) if shared else 0.0
                gap = f"{(acc_c - acc_s) / (acc_m - acc_s):.0%}" if acc_m > acc_s else "mentor not better"
            lines.append(
                f"| {task} | {a.label} → {b.label} | {len(common)} | {_percent(acc_a)} | {_percent(acc_b)} "
                f"| {pair.fixed} | {pair.broken} | {gap} |"
            )
    return "\n".join(lines)


def _first(runs: Sequence[Run], method: str) -> Run | None:
    return next((r for r in runs if r.header["method"] == method), None)


def _comparison_pairs(runs: Sequence[Run], student: Run | None, mentor: Run | None) -> list[tuple[Run, Run]]:
    collabs = [r for r in runs if r.header["method"] == "collab"]
    plain = [r for r in collabs if r.is_fixed_loop]
    reference = next(iter(plain or collabs), None)  # the paper's loop: random probes, no budget
    pairs = [(student, b) for b in runs if student is not None and b is not student]
    if reference is not None:
        if mentor is not None:
            pairs.append((mentor, reference))
        pairs += [(reference, b) for b in runs if b not in (student, mentor, reference)]
    return pairs


# The series of the accuracy plot, at most eight a panel: each method once,
# collab twice (probing words, or auditing every token), the two models alone as one.
SERIES = {
    "student": ("one model alone", "o", "tab:blue"),
    "mentor": ("one model alone", "s", "tab:blue"),
    "cosd": ("cosd", "^", "tab:purple"),
    "nudging": ("nudging", "<", "tab:brown"),
    "rstitch": ("rstitch", ">", "tab:pink"),
    "average": ("average", "P", "tab:olive"),
    "takeover": ("takeover", "v", "tab:red"),
}


def _series(run: Run) -> tuple[str, str, str]:
    method = str(run.header["method"])
    if method != "collab":
        return SERIES.get(method, (method, "x", "tab:grey"))
    if run.probe_policy == "audit":
        return "collab, audit probing", "X", "darkgreen"
    return "collab, word probes", "D", "tab:green"


def _point_label(run: Run) -> str:
    """What a point is, in a word or two (its series' colour and marker say the method)."""
    method = str(run.header["method"])
    if method in ("student", "mentor"):
        return method
    if method != "collab":
        return ""  # one run per baseline: the legend names it
    if run.probe_policy == "audit":
        return f"{run.header['trigger']} trigger"
    return "the paper's loop" if run.is_fixed_loop else "default"


def _label_offsets(points: Sequence[tuple[float, float]], x_span: float, y_span: float) -> list[tuple[int, int]]:
    """Where each point's label goes (points of offset): to its right, or to
    its left in the last fifth of the axis, and stepped down past any label
    already placed close by, so that no two labels print over each other."""
    placed: list[tuple[float, float]] = []
    offsets = []
    for x, y in points:
        dx = -6 if x > 0.8 * x_span else 6
        dy, label_y = 4, y
        while any(abs(x - px) < 0.12 * x_span and abs(label_y - py) < 0.045 * y_span for px, py in placed):
            dy -= 10
            label_y -= 0.06 * y_span
        placed.append((x, label_y))
        offsets.append((dx, dy))
    return offsets


def _plotted(run: Run) -> bool:
    """Of collab's word-probing variants, the paper's loop and the default
    (self verifier, random probes, k = 16) stand for the rest in the plot; the
    table has every run."""
    h = run.header
    if h["method"] != "collab" or run.probe_policy == "audit":
        return True
    return run.probe_policy == "random" and h.get("verifier") == "self" and h.get("segment_tokens") == 16


def plot_accuracy_vs_mentor_seconds(runs: Sequence[Run], path: Path) -> None:
    """Accuracy against the mentor's compute per item, one panel per task: the
    fair cost across methods (a token-level method's small "share" still has
    the mentor read every token it is asked about, one at a time)."""
    plt = pyplot()
    runs = [run for run in runs if _plotted(run)]
    tasks = list(dict.fromkeys(r.task for r in runs))
    figure, axes = plt.subplots(len(tasks), 1, figsize=(8.0, 3.9 * len(tasks) + 0.8), squeeze=False)
    handles: dict[str, object] = {}
    for axis, task in zip(axes[:, 0], tasks, strict=True):
        task_runs = [r for r in runs if r.task == task]
        points = []
        for run in task_runs:
            n = len(run.items)
            low, high = wilson_interval(int(run.total("correct")), n)
            series, marker, colour = _series(run)
            x, y = run.total("mentor_s") / n, 100 * run.accuracy
            drawn = axis.errorbar(
                x, y, yerr=[[y - 100 * low], [100 * high - y]], fmt=marker, color=colour, capsize=3, alpha=0.85
            )
            handles.setdefault(series, drawn)
            points.append((x, y))
        x_span = max(x for x, _ in points) or 1.0
        y_values = [y for _, y in points]
        y_span = max(max(y_values) - min(y_values), 10.0)
        for run, (x, y), (dx, dy) in zip(task_runs, points, _label_offsets(points, x_span, y_span), strict=True):
            label = _point_label(run)
            if label:
                axis.annotate(
                    label,
                    (x, y),
                    fontsize=7,
                    xytext=(dx, dy),
                    textcoords="offset points",
                    ha="right" if dx < 0 else "left",
                )
        axis.set_title(f"{task} ({max(len(r.items) for r in task_runs)} items)", fontsize=10)
        axis.set_xlabel("mentor seconds per item (its compute, whatever it wrote)")
        axis.set_ylabel("accuracy (%)")
        axis.margins(x=0.08, y=0.12)
        axis.grid(alpha=0.3)
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def plot_throughput(runs: Sequence[Run], path: Path) -> None:
    plt = pyplot()

    labels = [f"{r.task}\n{r.label}" for r in runs]
    speeds = [r.total("tokens_total") / r.total("seconds") if r.total("seconds") else 0.0 for r in runs]
    figure, axis = plt.subplots(figsize=(max(6.0, 0.9 * len(runs)), 4.2))
    axis.bar(range(len(runs)), speeds, color=[METHOD_COLOURS.get(str(r.header["method"]), "tab:grey") for r in runs])
    axis.set_xticks(range(len(runs)), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("answer tokens per second")
    axis.set_title("Throughput per method (same machine, same items)")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_frontier(runs: Sequence[Run], path: Path, title: str) -> None:
    """Accuracy against mentor share: collab's grid (one line per segment length,
    points in probe-rate order) with every other method, budgeted and
    uncertainty-gated collab as points of their own, on the same axes."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    # Only the fixed loop forms lines: a budgeted run's share is set by its target, not its ρ.
    collab = [r for r in runs if r.is_fixed_loop]
    for k in sorted({int(r.header["segment_tokens"]) for r in collab}):
        line = sorted((r for r in collab if int(r.header["segment_tokens"]) == k), key=lambda r: r.header["probe_rate"])
        axis.plot(
            [100 * r.mentor_share for r in line],
            [100 * r.accuracy for r in line],
            "-D",
            label=f"collab k={k} (ρ " + ", ".join(f"{r.header['probe_rate']:g}" for r in line) + ")",
        )
    for run in (r for r in runs if not r.is_fixed_loop):
        method = str(run.header["method"])
        variant = method == "collab"
        axis.plot(
            100 * run.mentor_share,
            100 * run.accuracy,
            "*" if variant else "o",
            color="black" if variant else METHOD_COLOURS.get(method, "tab:grey"),
            markersize=12 if variant else 8,
            label=run.label,
        )
    axis.set_xlabel("mentor share of answer tokens (%)")
    axis.set_ylabel("accuracy (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(folders: Sequence[Path], out: Path) -> tuple[str, list[Path]]:
    runs = load_runs(folders)
    out.mkdir(parents=True, exist_ok=True)
    sections = ["## Results", results_table(runs)]
    troubled = [run for run in runs if run.answers_with_mentor_failures]
    if troubled:
        sections.append(
            "**The mentor failed requests** in these runs, where the student then went on alone: "
            + "; ".join(
                f"{run.task} {run.label}: {run.answers_with_mentor_failures} of {len(run.items)} answers"
                for run in troubled
            )
            + "."
        )
    sections += ["## Pairwise comparison on common items", comparison_table(runs)]
    markdown = "\n\n".join(sections)
    (out / "report.md").write_text(markdown + "\n", encoding="utf-8")
    plots = [out / "accuracy_vs_mentor_seconds.png", out / "throughput.png"]
    plot_accuracy_vs_mentor_seconds(runs, plots[0])
    plot_throughput(runs, plots[1])
    return markdown, plots
