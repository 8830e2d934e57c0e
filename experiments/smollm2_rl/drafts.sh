#!/usr/bin/env bash
# experiments/smollm2_rl/drafts.sh: does a path trained to correct x_t make steps pay? The diagnosis of on_lora.sh:
# trained only on x_t of the true token, the path learns that a readable x_t is right, and at inference, where
# x_t carries the chain's own earlier guesses, it can only confirm them. With `drafts=0.5` half of the training
# x_t show a draft of the token instead, sampled from the frozen LM itself (the token the chain's first evaluation
# proposes, since the fused model is the LM at t = 0), while the loss is still the true token's. Arms, on the 2-term
# short answers of on_lora.sh, on its LoRA model (trained here with its command when missing), w_d held open:
#   on_lora_sigma8          on_lora.sh's σ 8 arm again (x_t readable from t ≈ 0.8), the control
#   on_lora_sigma8_drafts   the same with drafts=0.5 (one setting, not chosen on validation)
#   on_lora_sigma8_drafts_rl   GRPO through the chain on it (on_lora.sh's chosen chain setting: lr 3e-5, x̂ at 0.5)
#   lora_rl_lr3e-5          on_lora.sh's chosen LoRA + RL (token space, lr 3e-5), for the match on the same problems
# then each on the 500 test problems at levels 2, 8 and 16 under both protocols (the RL arm at levels 16 greedily
# only), the paired comparisons, the report.
#
#   bash experiments/smollm2_rl/drafts.sh [OUT]     (OUT: experiments/runs/smollm2_rl_drafts; ARMS: as on_lora.sh)
#
# Resumable like on_lora.sh, and like it two copies may run at once (one thread each; experiments/stage.sh).
set -euo pipefail
arms=${ARMS:-experiments/runs/smollm2_short_answers}
out=${1:-experiments/runs/smollm2_rl_drafts}
source "$(dirname "$0")/arms.sh"
held='module.lr_multipliers={w_d:0,conditioning:0}'

lora=$arms/lora/export
train lora "$arms/lora" experiment=short_answers method=lora trainer.val_check_interval=0.25
after "$lora"
# the two paths side by side (a copy each), then RL on the one with drafts while the other copy scores
train on_lora_sigma8_drafts "$out/on_lora_sigma8_drafts" experiment=short_answers finetuned="$lora" lr=3e-4 sigma=8 \
  drafts=0.5 "$held"
train on_lora_sigma8 "$out/on_lora_sigma8" experiment=short_answers finetuned="$lora" lr=3e-4 sigma=8 "$held"
after "$out/on_lora_sigma8_drafts/export"
reinforce on_lora_sigma8_drafts_rl method=l2d_rl init="$out/on_lora_sigma8_drafts/export" "$held" \
  method.reinforce.x1_temperature=0.5 lr=3e-5
reinforce lora_rl_lr3e-5 method=lora_rl init="$lora" lr=3e-5

# protocol:levels per arm (levels 1 is the LoRA model, exact at t = 0); longest first so two copies end together
declare -A scores=([on_lora_sigma8_drafts]="paper:8 greedy:16 paper:2 greedy:8 greedy:2 paper:16"
  [on_lora_sigma8]="paper:8 greedy:16 paper:2 greedy:8 greedy:2"
  [on_lora_sigma8_drafts_rl]="paper:8 greedy:16 paper:2 greedy:8 greedy:2")  # paper:16 not scored (23 min)
levels_arms=(on_lora_sigma8_drafts on_lora_sigma8 on_lora_sigma8_drafts_rl)
for protocol in greedy paper; do evaluate "$protocol" lora checkpoint="$lora"; done
for arm in "${levels_arms[@]}"; do score_levels "$arm"; done
score_token lora_rl_lr3e-5

# Once every score exists (another copy may still be scoring): the paired comparisons and the report.
every_score() {
  local protocol
  for protocol in greedy paper; do results "$protocol" '' lora lora_rl_lr3e-5; done
  levels_scored "${levels_arms[@]}"
}
ls $(every_score) > /dev/null 2>&1 || exit 0
validation_accuracy on_lora_sigma8_drafts_rl lora_rl_lr3e-5
for protocol in greedy paper; do
  for arm in "${levels_arms[@]}"; do more_levels "$protocol" "$arm"; done  # more steps, same model
  for levels in 2 8 $([[ $protocol == greedy ]] && echo 16); do  # at the same levels: drafts and drafts + RL
    python experiments/smollm2_rl/compare.py $(results "$protocol" "_levels$levels" on_lora_sigma8 \
      on_lora_sigma8_drafts on_lora_sigma8_drafts_rl)  # against the control
    python experiments/smollm2_rl/compare.py $(results "$protocol" "_levels$levels" on_lora_sigma8_drafts \
      on_lora_sigma8_drafts_rl)  # RL against its start
  done
  python experiments/smollm2_rl/compare.py $(results "$protocol" '' lora) $(results "$protocol" _levels8 "${levels_arms[@]}")
  python experiments/smollm2_rl/compare.py $(results "$protocol" '' lora_rl_lr3e-5) \
    $(results "$protocol" _levels8 "${levels_arms[@]}")  # the match at levels 8
done
python -m l2d.report out="$out/report" inputs="[$out]"
column -t -s $'\t' "$out/stages.tsv"
