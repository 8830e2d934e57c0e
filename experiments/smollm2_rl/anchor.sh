#!/usr/bin/env bash
# experiments/smollm2_rl/anchor.sh: where do the steps that pay come from? Every chain starts with an evaluation
# at t = 0, where the fused model is exactly the frozen LM (w_d(0) = 0): its most likely token is the first x̂, and
# the first solver step moves x towards that token's embedding. With few levels that step is long (midpoint, 2
# levels: half-way at once), and where x_t is readable early (σ 8) the next evaluations read the LM's guess back
# and keep it; with many levels the step is short and the path's own guess takes over. The hypothesis: the gain
# of levels 8 and 16 over levels 2 is the end of that anchor, not more refinement. `solver.t_start=τ` skips the
# t = 0 evaluation (the chain starts from noise at τ, where the path already speaks), so the hypothesis predicts
# that levels 2 from τ scores as levels 16 from 0, and that from τ more levels add nothing.
#   sigma8       L2D on the frozen base, σ 8 (sigma8.sh's start, the same command), where steps paid before and
#                after RL (sigma8.sh)
# τ is chosen on the 100 validation problems (greedy, levels 2) among 0.1, 0.25, 0.4; then the arm is scored on the
# 500 test problems from 0 and from τ under both protocols, with the paired comparisons.
#
#   bash experiments/smollm2_rl/anchor.sh [OUT]     (OUT: experiments/runs/smollm2_rl_anchor)
#
# Resumable, and two copies may run at once (one thread each; experiments/stage.sh).
set -euo pipefail
out=${1:-experiments/runs/smollm2_rl_anchor}
source "$(dirname "$0")/arms.sh"

train sigma8 "$out/sigma8" experiment=short_answers sigma=8

# τ on the validation problems, before any test score from τ exists
tau=$(t_start_on_validation "$out/sigma8/export" 0.1 0.25 0.4)
echo "t_start chosen on validation: $tau"

# protocol:levels[:t_start], longest first, so that two copies end together
declare -A scores=([sigma8]="paper:8 paper:8:$tau greedy:16 greedy:16:$tau paper:2 paper:2:$tau greedy:8 greedy:2 greedy:2:$tau")
score_levels sigma8

# Once every score exists (another copy may still be scoring): the paired comparisons and the report.
ls $(levels_scored sigma8) > /dev/null 2>&1 || exit 0
for protocol in greedy paper; do
  against "$protocol" sigma8 2
  against "$protocol" sigma8 "2:$tau"
done
# When does the chain decide? Each token's evaluations replayed (chain_changes.py), against the frozen base alone:
# a token whose most likely value is the same from t = 0 on is the frozen LM's own first guess, kept.
evaluate greedy base
changed="$(results greedy '' base sigma8_levels2 sigma8_levels16 | tr '\n' ' ')"
stage "chain changes" "$out/chain_changes.txt" bash -c "python experiments/smollm2_rl/chain_changes.py $changed \
  > $out/chain_changes.txt.tmp && mv $out/chain_changes.txt.tmp $out/chain_changes.txt"
cat "$out/chain_changes.txt"
# the test scorings and the path's run (loss against t); not the 100 validation problems that chose τ
stage report "$out/report/report.md" python -m l2d.report out="$out/report" inputs="[$out/eval,$out/sigma8]"
column -t -s $'\t' "$out/stages.tsv"
