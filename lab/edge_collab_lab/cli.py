"""`edge-collab verifier collect|train|value`: the learned verifier's pipeline.

Registered into the edge-collab command through the `edge_collab.commands`
entry point (see `register`), beside the runtime's own `verifier info`."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.evaluation.tasks import load_task, select
from edge_collab_lab.collect import collect_divergences, finished_items, local_mentor
from edge_collab_lab.training import (
    Label,
    calibrate_scores,
    compare_on,
    export_onnx,
    fit_calibration,
    held_out_mask,
    load_records,
    out_of_fold_scores,
    scored_choices,
    train_mlp,
)
from edge_collab_lab.trigger_training import export_trigger, load_positions, train_trigger
from edge_collab_lab.value import SPLITTABLE, plot_value, read_graded


def _command_line(ctx: click.Context) -> str:
    """The invocation, rebuilt from click's parsed parameters (for provenance)."""
    parts: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value is None or value == param.default or value == ():
            continue
        if isinstance(param, click.Argument):
            parts += [str(v) for v in (value if isinstance(value, tuple) else (value,))]
        elif param.opts:
            for single in value if isinstance(value, tuple) else (value,):
                parts += [param.opts[0], str(single)]
    return f"{ctx.command_path} {shlex.join(parts)}"


# Options the trainers share.
_hidden_option = click.option("--hidden", type=click.IntRange(1, 256), default=16, show_default=True)
_seed_option = click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
_weight_decay_option = click.option(
    "--weight-decay",
    type=click.FloatRange(0.0, 100.0),
    default=1e-3,
    show_default=True,
    help="L2 on the weights; raise it when the inputs are many (hidden states) and the examples few.",
)


def _provenance(
    ctx: click.Context,
    files: tuple[Path, ...],
    sources: list[str],
    metrics: dict[str, Any],
    hidden: int,
    weight_decay: float,
) -> dict[str, str]:
    """What a trained file says about itself: the pair its data came from (from
    each file's header), the data, the command, when, and how it scored."""
    students = {json.loads(line)["student"] for f in files for line in f.read_text().splitlines()[:1]}
    mentors = {json.loads(line)["mentor"] for f in files for line in f.read_text().splitlines()[:1]}
    return {
        "student": students.pop() if len(students) == 1 else "any",
        "mentor": mentors.pop() if len(mentors) == 1 else "any",
        "training_data": json.dumps(sources),
        "training_command": _command_line(ctx),
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": json.dumps(metrics),
        "hidden_units": str(hidden),
        "weight_decay": str(weight_decay),
    }


def _check_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Kept as text so the recorded command line shows it as typed.
    if value is not None:
        part, _, count = value.partition("/")
        if not (part.isdigit() and count.isdigit() and 1 <= int(part) <= int(count)):
            raise click.BadParameter(f"{value!r}: expected K/N with 1 <= K <= N, e.g. 1/2", ctx, param)
    return value


@click.command()
@click.argument("tasks", nargs=-1, required=True)
@model_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSONL file to append to.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N training items per task.")
# Its own defaults, not the engine's: k = 16 as in the committed data (research/verifier/); a
# verifier trained at one segment length sees other log-probability statistics at another.
@generation_options(
    only=(
        "probe_rate",
        "segment_tokens",
        "max_new_tokens",
        "seed",
        "probe_policy",
        "audit_tokens",
        "trigger_threshold",
    ),
    defaults={"probe_rate": 0.5, "segment_tokens": 16, "max_new_tokens": 384},
)
@click.option(
    "--finish/--no-finish",
    default=True,
    show_default=True,
    help="Finish the answer from both branches and grade them (the outcome label; slow). "
    "--no-finish records only the cheap gold-answer label.",
)
@click.option(
    "--skip-items-of",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Leave out the items another collection file has finished (e.g. the items kept for --evaluate-on).",
)
@click.option(
    "--only-items-of",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Collect only the items another collection file has finished (e.g. to add the gold-answer "
    "label to outcome-labelled items: same settings, same divergences).",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=_check_shard,
    help="Collect only the K-th of every N training items (so N collections, each into its own "
    "file, can run side by side; the split does not change as files grow).",
)
@click.option(
    "--hidden-state/--no-hidden-state",
    default=False,
    show_default=True,
    help="Also record the student's last hidden state at the end of the self verifier's question "
    "(the paper's verifier input; about 2.4 kB per divergence for a 0.5B student).",
)
@click.option(
    "--mentor-judge/--no-mentor-judge",
    default=False,
    show_default=True,
    help="Also let the mentor read the self verifier's question at each divergence (after the item, "
    "so the run is unchanged): its log-odds for its own segment in both option orders, and its hidden state.",
)
@click.pass_context
def collect(
    ctx: click.Context,
    tasks: tuple[str, ...],
    out: Path,
    limit: int | None,
    finish: bool,
    skip_items_of: tuple[Path, ...],
    only_items_of: tuple[Path, ...],
    shard: str | None,
    hidden_state: bool,
    mentor_judge: bool,
    **options: Any,
) -> None:
    """Run collab on TASKS' training items and record each divergence with the
    outcome of finishing the answer from either branch, and the student's
    probability of the gold answer right after either branch."""
    settings = generation_settings(options)
    header = {
        "command": _command_line(ctx),
        "tasks": list(tasks),
        "probe_rate": settings.probe_rate,
        "segment_tokens": settings.segment_tokens,
        "max_new_tokens": settings.max_new_tokens,
        "seed": settings.seed,
        **(
            {
                "probe_policy": "audit",
                "audit_tokens": settings.audit_tokens,
                "trigger_threshold": settings.trigger_threshold,
            }
            if settings.probe_policy == "audit"
            else {}
        ),
        "finish": finish,
        "hidden_state": hidden_state,
        "mentor_judge": mentor_judge,
    }
    with open_pair(ctx, {**options, "verifier": "self"}, settings) as pair:
        header |= {"student": pair.student.name, "mentor": pair.mentor_name}
        local_mentor(pair, mentor_judge)  # refused before any progress bar
        skipped = set().union(*(finished_items(path)[0] for path in skip_items_of))
        wanted = set().union(*(finished_items(path)[0] for path in only_items_of)) if only_items_of else None
        for spec in tasks:
            task = load_task(spec, ctx.obj["data_dir"])
            items = select(task, "train")
            if not items:
                raise click.ClickException(f"{task.name} has no training items (tasks under 200 items have none)")
            if shard is not None:  # before skipping: a shard's items stay its own however the files grow
                part, count = (int(n) for n in shard.split("/"))
                items = items[part - 1 :: count]
            items = [item for item in items if item.id not in skipped and (wanted is None or item.id in wanted)][:limit]
            with click.progressbar(
                length=len(items), label=f"collect {task.name}", show_eta=True, show_pos=True, file=sys.stderr
            ) as bar:

                def update(done: int, records: int, bar: Any = bar) -> None:
                    bar.update(done - bar.pos, f"{records} divergences")

                done, records = collect_divergences(
                    pair,
                    items,
                    settings,
                    out,
                    header,
                    finish,
                    on_item=update,
                    hidden_state=hidden_state,
                    mentor_judge=mentor_judge,
                )
            click.echo(f"{task.name}: {done} items, {records} divergences -> {out}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .onnx file to write.")
@_hidden_option
@click.option(
    "--held-out",
    type=click.FloatRange(0.05, 0.9),
    default=0.25,
    show_default=True,
    help="Share of items whose divergences are held out for the reported metrics.",
)
@click.option(
    "--folds",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Also cross-validate over all divergences with this many item folds (0: skip).",
)
@_seed_option
@_weight_decay_option
@click.option(
    "--label",
    type=click.Choice(["outcome", "belief"]),
    default="outcome",
    show_default=True,
    help="Train on finished-answer outcomes, or on the student's gold-answer probability after each branch.",
)
@click.option(
    "--evaluate-on",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also judge the model on these files' outcome-labelled divergences (their items are left out of training).",
)
@click.option(
    "--hidden-state/--no-hidden-state",
    default=False,
    show_default=True,
    help="Also read the student's hidden state at the end of the self verifier's question "
    "(collected with --hidden-state; the verifier then works only with that student).",
)
@click.option(
    "--calibrate/--no-calibrate",
    default=True,
    show_default=True,
    help="Rescale the model's log-odds to how well it predicts items it never saw (Platt scaling on the "
    "cross-validated scores), so the mentor budget's pressure can outweigh them; needs --folds of 2 or more.",
)
@click.pass_context
def train(
    ctx: click.Context,
    files: tuple[Path, ...],
    out: Path,
    hidden: int,
    held_out: float,
    folds: int,
    seed: int,
    weight_decay: float,
    label: Label,
    evaluate_on: tuple[Path, ...],
    hidden_state: bool,
    calibrate: bool,
) -> None:
    """Train an MLP on collected divergences and export it to ONNX.

    A divergence collected in several files (an outcome-labelled file and the
    same items collected again with --only-items-of) counts once, with the
    labels and hidden states of all of them."""
    if folds == 1:
        raise click.BadParameter("cross-validation needs at least 2 folds (0 skips it)", param_hint="--folds")
    dataset = load_records(files, label, hidden_state)
    outcome_test = load_records(evaluate_on, "outcome", hidden_state) if evaluate_on else None
    left_out = 0
    if outcome_test is not None:
        dataset, left_out = dataset.without_items(set(outcome_test.items))
    if not len(dataset.labels):
        raise click.ClickException(f"no divergences decisive under the {label} label in {', '.join(map(str, files))}")
    mask = held_out_mask(dataset.items, held_out)
    if mask.all() or not mask.any():
        raise click.ClickException("too few items to hold some out; collect more")
    fit: dict[str, Any] = {"hidden": hidden, "seed": seed, "weight_decay": weight_decay}
    model = train_mlp(dataset.features[~mask], dataset.labels[~mask], **fit)
    metrics: dict[str, Any] = {}
    if folds >= 2:
        scores = out_of_fold_scores(dataset, folds, **fit)
        metrics["cross_validated"] = scored_choices(dataset, scores)
        if calibrate:
            scored = ~np.isnan(scores)
            scale, shift = fit_calibration(scores[scored], dataset.labels[scored])
            model = model.calibrated(scale, shift)
            metrics["calibration"] = {"scale": scale, "shift": shift}
            # In-sample for the two calibration numbers, out-of-fold for the model:
            # what the shipped thresholds would have chosen on the same divergences.
            metrics["cross_validated_calibrated"] = scored_choices(dataset, calibrate_scores(scores, scale, shift))
    metrics |= {
        "held_out": compare_on(dataset, mask, model),
        "training": compare_on(dataset, ~mask, model),
        "ties_excluded": dataset.ties,
    }
    if outcome_test is not None:
        metrics["outcome_test"] = compare_on(outcome_test, np.ones(len(outcome_test.labels), dtype=bool), model)
    metrics["label"] = label
    export_onnx(model, out, _provenance(ctx, files, dataset.sources, metrics, hidden, weight_decay))
    click.echo(
        f"decisive divergences ({label} label): {len(dataset.labels)} ({int(mask.sum())} held out), "
        f"ties excluded: {dataset.ties}" + (f", left out for --evaluate-on: {left_out}" if outcome_test else "")
    )
    for data, role in ((dataset, "training"), (outcome_test, "--evaluate-on")):
        if data is not None and data.differing_items:
            click.echo(
                f"  {len(data.differing_items)} {role} items left out: their divergences differ between files "
                f"({', '.join(sorted(data.differing_items)[:3])}{', ...' if len(data.differing_items) > 3 else ''})"
            )
    compared = ~np.isnan(dataset.outcomes)
    if label == "belief" and compared.any():
        agreement = float((dataset.labels[compared] == dataset.outcomes[compared]).mean())
        shared = int(compared.sum())
        click.echo(f"  the belief label agrees with the outcome on {agreement:.1%} of {shared} divergences")
    if "calibration" in metrics:
        scale, shift = metrics["calibration"]["scale"], metrics["calibration"]["shift"]
        click.echo(f"  calibrated on the {folds}-fold scores: log-odds x {scale:.3f} {shift:+.3f}")
    sections = [
        ("held_out", "held out"),
        ("cross_validated", f"{folds}-fold"),
        ("cross_validated_calibrated", f"{folds}-fold, calibrated"),
    ]
    if outcome_test is not None:
        sections.append(("outcome_test", f"outcomes of --evaluate-on ({len(outcome_test.labels)})"))
    for section, title in sections:
        for name, row in metrics.get(section, {}).items():
            if name.startswith("learned_vs_"):
                click.echo(
                    f"  {title}, learned right where {name.removeprefix('learned_vs_')} was wrong "
                    f"{row['wins']:.0f}, the reverse {row['losses']:.0f} (sign test p = {row['p']:.2f})"
                )
            elif name != "divergences":
                auc = f", AUC {row['auc']:.3f}" if "auc" in row and not np.isnan(row["auc"]) else ""
                click.echo(f"  {title}, {name:<15} accuracy {row['accuracy']:.1%}{auc}")
    click.echo(f"written: {out}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--by",
    "feature",
    type=click.Choice(SPLITTABLE),
    default="student_entropy",
    show_default=True,
    help="The feature (or verifier log-odds: self_margin, and the mentor's from collect --mentor-judge) "
    "whose quantiles split the divergences.",
)
@click.option("--bins", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the bins to this PNG.")
def value(files: tuple[Path, ...], feature: str, bins: int, plot: Path | None) -> None:
    """How much taking the mentor's segment is worth, by FEATURE, on outcome-labelled divergences.

    Net value: answers turned right minus answers turned wrong by taking the
    mentor's segment instead of the student's, per divergence, when the student
    writes the rest alone."""
    graded = read_graded(files, feature)
    value_bins = graded.value_bins(bins)
    click.echo(f"{feature:>22}  divergences  only mentor right  only student right  net per divergence  sign test p")
    for part in value_bins:
        click.echo(
            f"{part.low:>10.3g} – {part.high:<9.3g}  {part.divergences:>11}  {part.mentor_only_right:>17}  "
            f"{part.student_only_right:>18}  {part.net_per_divergence:>+18.3f}  {part.p:>11.2f}"
        )
    ranking, decisive = graded.ranking_auc()
    click.echo(f"AUC of {feature} for the mentor's branch finishing right, on the {decisive} decisive: {ranking:.3f}")
    if plot is not None:
        plot_value(value_bins, feature, plot)
        click.echo(f"written: {plot}")


@click.command("train-trigger")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The .onnx file to write.")
@_hidden_option
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="Item folds for the out-of-fold comparison with the rules and the calibration.",
)
@_seed_option
@_weight_decay_option
@click.pass_context
def train_trigger_command(
    ctx: click.Context, files: tuple[Path, ...], out: Path, hidden: int, folds: int, seed: int, weight_decay: float
) -> None:
    """Train a learned trigger (--trigger learned) on positions collected with
    `verifier collect --probe-policy audit --no-finish`, and compare it, out of
    fold, with CoSD's rule and the mentor-prefers margin on the same positions.

    The label: does the student's probability of the gold answer rise when the
    mentor's segment is taken at the position (ties within 0.1 nats left out)."""
    positions = load_positions(files)
    model, metrics = train_trigger(positions, folds, hidden=hidden, seed=seed, weight_decay=weight_decay)
    export_trigger(model, out, _provenance(ctx, files, positions.sources, metrics, hidden, weight_decay))
    click.echo(
        f"positions: {metrics['positions']} from {metrics['items']} items; decisive: {metrics['decisive']} "
        f"(the mentor's segment helps at {metrics['helps']})"
    )
    for name, value in metrics["out_of_fold_auc"].items():
        click.echo(f"  {folds}-fold AUC for 'helps', {name:<15} {value:.3f}")
    click.echo(f"written: {out}")


def register(cli: click.Group) -> None:
    """Add the lab's commands to the `verifier` group of the edge-collab command."""
    group = cli.commands["verifier"]
    assert isinstance(group, click.Group)
    for command in (collect, train, value, train_trigger_command):
        group.add_command(command)
