#!/usr/bin/env bash
# The development-item sweep behind the shipped defaults (docs/defaults.md, "How the
# defaults were chosen"): the training splits of elementary_math_qa and strategyqa, never their test
# items; default pair, greedy, 512-token cap, one thread. Runs in the order
# that matters most if cut short; rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
EC=${EC:-.venv/bin/edge-collab}
OUT=${OUT:-research/sweep}
TASK=elementary_math_qa/question_only
COMMON=(--split train --limit "${LIMIT:-30}" --max-tokens 512 --threads 1 --out "$OUT")
$EC data fetch bigbench elementary_math_qa >/dev/null

$EC sweep "$TASK" --probe-rates 0.25,0.5 --segment-lengths 16 --baselines student,mentor --mentor-budget 0 "${COMMON[@]}"
$EC sweep "$TASK" --probe-rates 0.25 --segment-lengths 16 --baselines "" --mentor-budget 0.18 "${COMMON[@]}"
$EC sweep "$TASK" --probe-rates 0.25 --segment-lengths 8 --baselines cosd --mentor-budget 0 "${COMMON[@]}"
$EC sweep "$TASK" --probe-rates 0.25 --segment-lengths 8 --baselines "" --mentor-budget 0.18 "${COMMON[@]}"
$EC sweep "$TASK" --probe-rates 0.1,0.05 --segment-lengths 16 --baselines "" --mentor-budget 0 "${COMMON[@]}"
# A second task: strategyqa's training split (the verifier data comes from it
# too; none of it is reported as accuracy). Budgeted grid points run as sweeps
# of their own, one controller each.
$EC data fetch bigbench strategyqa >/dev/null
$EC sweep strategyqa --probe-rates 0.25 --segment-lengths 16 --baselines student,mentor --mentor-budget 0 "${COMMON[@]}"
$EC sweep strategyqa --probe-rates 0.25 --segment-lengths 16 --baselines "" --mentor-budget 0.18 "${COMMON[@]}"
$EC sweep strategyqa --probe-rates 0.25 --segment-lengths 8 --baselines "" --mentor-budget 0.18 "${COMMON[@]}"
# The development check of uncertainty-gated probing with always-mentor and the
# budget against the default (docs/budget-and-probing.md), with
# date_understanding as a third task (its default run is here too).
$EC data fetch bigbench date_understanding >/dev/null
for task in "$TASK" strategyqa date_understanding; do
  $EC eval "$task" --method collab --probe-policy uncertainty --verifier always-mentor --mentor-budget 0.18 \
    --segment-tokens 16 "${COMMON[@]}"
done
$EC eval strategyqa --method collab --verifier always-mentor --mentor-budget 0.18 --segment-tokens 16 "${COMMON[@]}"
$EC eval date_understanding --method collab --mentor-budget 0.18 --segment-tokens 16 "${COMMON[@]}"
