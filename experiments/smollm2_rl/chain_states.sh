#!/usr/bin/env bash
# experiments/smollm2_rl/chain_states.sh: do steps pay once the path is trained where its own chain goes? Trained
# only on x_t of the true token (the paper's objective), the path learns that a readable x_t is right, so at
# inference, where x_t carries the chain's own earlier guesses, later evaluations confirm them. `chain_states=0.5`
# (an extension, l2d/model/l2d.py) trains half of the slots at the input of one evaluation of the path's own chain
# instead (midpoint, argmax x̂ as both protocols decode, levels drawn from 2, 4, 8), with the true token's
# cross-entropy: every evaluation learns to arrive at the right token from where the chain really is.
#   sigma8_chain   anchor.sh's sigma8 (L2D on the frozen base, σ 8, the same seed and data) with chain_states=0.5
# scored as anchor.sh scores sigma8 (from t = 0 and from its τ, which skips the frozen LM's first guess), then
# compared with anchor.sh's sigma8 at the same levels, paired on the same 500 test problems.
#
#   bash experiments/smollm2_rl/chain_states.sh [OUT]   (OUT: experiments/runs/smollm2_rl_chain_states;
#                                                        ANCHOR: anchor.sh's OUT)
#
# Resumable, and two copies may run at once (one thread each; experiments/stage.sh).
set -euo pipefail
anchor=${ANCHOR:-experiments/runs/smollm2_rl_anchor}
out=${1:-experiments/runs/smollm2_rl_chain_states}
source "$(dirname "$0")/arms.sh"

train sigma8_chain "$out/sigma8_chain" experiment=short_answers sigma=8 chain_states=0.5
tau=$(out=$anchor t_start_on_validation "$anchor/sigma8/export" 0.1 0.25 0.4)  # anchor.sh's τ
# Under the paper's protocol levels 8 scored 1.95% (the emitted token sampled from a final distribution spread over
# digits, README), so its other paper scorings were left out.
declare -A scores=([sigma8_chain]="paper:8 greedy:16 greedy:16:$tau greedy:8 greedy:2 greedy:2:$tau")
score_levels sigma8_chain

ls $(levels_scored sigma8_chain) > /dev/null 2>&1 || exit 0
against greedy sigma8_chain 2
against greedy sigma8_chain "2:$tau"
for score in ${scores[sigma8_chain]}; do  # against the paper's training at the same levels and start
  IFS=: read -r protocol levels from <<< "$score"
  name=$(score_name sigma8 "$levels" "$from")
  after "$anchor/eval/$protocol/$name/results.json"
  python experiments/smollm2_rl/compare.py "$anchor/eval/$protocol/$name/results.json" \
    "$(results "$protocol" '' "$(score_name sigma8_chain "$levels" "$from")")"
done
column -t -s $'\t' "$out/stages.tsv"
