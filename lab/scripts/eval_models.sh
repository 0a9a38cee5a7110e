#!/usr/bin/env bash
# The evaluation behind docs/results.md: student, mentor and collab
# on the same items of three BIG-bench tasks with the default pair. Runs grow in
# rounds so that every cell of the table has results early; rerunning resumes.
#
# On two cores the tasks run as two single-threaded streams side by side: two
# one-thread llama.cpp processes write about 1.3x the tokens of one two-thread
# process there (measured: student 2 x 27 vs 43 tok/s, mentor 2 x 18 vs 26).
# STREAMS=1 runs everything in one stream with all cores. Collab here is the
# paper's fixed loop (--mentor-budget 0, k = 16); lab/scripts/eval_methods.sh adds the budget.
set -euo pipefail
cd "$(dirname "$0")/../.."
EC=${EC:-.venv/bin/edge-collab}
OUT=${OUT:-research/evaluations}
STREAMS=${STREAMS:-2}
$EC data fetch bigbench elementary_math_qa general_knowledge strategyqa >/dev/null

run() {  # run TASK:LIMIT... in order, with the given --threads option
  local threads=$1; shift
  for spec in "$@"; do
    $EC eval "${spec%%:*}" --method student --method mentor --method collab --limit "${spec##*:}" \
      --mentor-budget 0 --segment-tokens 16 --max-tokens 512 $threads --out "$OUT"
  done
}

math="elementary_math_qa/question_only"
if [ "$STREAMS" = 1 ]; then
  run "" general_knowledge:20 strategyqa:20 $math:20 general_knowledge:50 strategyqa:50 $math:50 \
    general_knowledge:70 strategyqa:100 $math:100
else
  run "--threads 1" $math:20 $math:50 $math:100 &
  run "--threads 1" general_knowledge:50 strategyqa:50 general_knowledge:70 strategyqa:100
  wait
fi
$EC report "$OUT"
