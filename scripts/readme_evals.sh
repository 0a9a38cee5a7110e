#!/usr/bin/env bash
# The evaluation behind the README's accuracy table: student, mentor and collab
# on the same items of three BIG-bench tasks with the default pair. Runs grow in
# rounds so that every cell of the table has results early; rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
EC=${EC:-.venv/bin/edge-collab}
OUT=${OUT:-results/readme}
$EC data fetch bigbench elementary_math_qa general_knowledge strategyqa >/dev/null
for limit in 20 50 70; do
  for task in general_knowledge strategyqa elementary_math_qa/question_only; do
    $EC eval "$task" --method student --method mentor --method collab --limit "$limit" --max-tokens 512 --out "$OUT"
  done
done
