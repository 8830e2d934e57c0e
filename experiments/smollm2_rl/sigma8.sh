#!/usr/bin/env bash
# experiments/smollm2_rl/sigma8.sh: the RL arm on a path that can read x_t. run.sh's l2d_rl trains the sigma 64
# path, whose x_t tells tokens apart only from t ~ 0.95, so a chain of evaluations has nothing to refine and RL
# left greedy decoding where it was (README, Validation). At sigma 8 x_t is readable from t ~ 0.8 and greedy
# accuracy already rises with steps (smollm2_short_answers, Sweep: 16.6% -> 20.4%). This script trains that path
# (sweep.sh's `sigma8`, the same command), then the same GRPO as run.sh's l2d_rl with x̂ sampled at temperature
# 0.5 (run.sh: 1), and scores both on the 500 test problems at levels 2, 8, 16, 4 under both protocols, to t = 1; then the
# paired comparisons against levels 2 and the report (its tables, and the reward curves by levels).
#
#   bash experiments/smollm2_rl/sigma8.sh [OUT]     (OUT: experiments/runs/smollm2_rl_sigma8)
#
# Resumable like run.sh, and like it two copies may run at once (e.g. one thread each; experiments/stage.sh).
set -euo pipefail
sweep=${SWEEP:-experiments/runs/smollm2_short_answers_sweep}
out=${1:-experiments/runs/smollm2_rl_sigma8}
source "$(dirname "$0")/arms.sh"

start=$sweep/sigma8/export
train sigma8 "$sweep/sigma8" experiment=short_answers sigma=8

after "$start"
reinforce l2d_rl method=l2d_rl init="$start" method.reinforce.x1_temperature=0.5

# The start first (a copy free while another trains scores it), then the RL arm; greedy (cheap) before the paper's
# sampling (4 completions).
declare -A exports=([sigma8]=$start [sigma8_rl]=$out/l2d_rl/export)
for arm in sigma8 sigma8_rl; do
  after "${exports[$arm]}"
  for protocol in greedy paper; do
    for levels in 2 8 16 4; do  # levels 1 is the frozen LM for both arms (exact at t = 0, tested)
      evaluate "$protocol" "${arm}_levels$levels" checkpoint="${exports[$arm]}" solver.levels="$levels"
    done
  done
done
scored() { echo "$out/eval/$1"/sigma8_rl_levels{2,8,16}/results.json "$out/eval/$1"/sigma8_levels{2,8,16}/results.json; }
# Once every score exists (another copy may still be scoring): the paired comparisons with levels 2 after RL, and the report.
ls $(scored greedy) $(scored paper) > /dev/null 2>&1 || exit 0
for protocol in greedy paper; do
  python experiments/smollm2_rl/compare.py $(scored "$protocol")
done
stage report "$out/report/report.md" python -m l2d.report out="$out/report" inputs="[$out]"
column -t -s $'\t' "$out/stages.tsv"
