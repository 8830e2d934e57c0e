#!/usr/bin/env bash
# experiments/smollm2_rl/three_terms.sh: the match of on_lora.sh on a second task, 3-term arithmetic (reasoning-gym
# basic_arithmetic, 3 terms of 1 digit, "Calculate 7 - 3 + 8."; answer only): a longer sum, where the LoRA
# model is further from solved and a chain has more to refine than on 2 terms. The arms, each on this task's data
# (the same seeds and sizes as conf/data/arithmetic.yaml) with on_lora.sh's settings, the learning rates chosen
# there on 2-term validation (not chosen again here):
#   lora                 LoRA next-token finetuning, 200 steps of 16 (experiment=short_answers method=lora)
#   on_lora              L2D-LoRA on that LoRA model, w_d held open (lr 3e-4)
#   lora_rl_lr3e-5       GRPO on the LoRA model in token space
#   on_lora_rl_lr3e-5    GRPO through the chain on on_lora, x̂ sampled at 0.5
# and the base model, zero-shot, greedily for scale;
# then every arm on 500 test problems (3 terms, unseen in training) under both protocols, the L2D arms at levels
# 2, 4, 8 and 16, the paired comparisons and the report.
#
#   bash experiments/smollm2_rl/three_terms.sh [OUT]     (OUT: experiments/runs/smollm2_rl_three_terms)
#
# Resumable like on_lora.sh, and like it two copies may run at once (one thread each; experiments/stage.sh).
set -euo pipefail
out=${1:-experiments/runs/smollm2_rl_three_terms}
source "$(dirname "$0")/arms.sh"
held='module.lr_multipliers={w_d:0,conditioning:0}'
# 3 terms of 1 digit: with 1-2 digits (conf/data/arithmetic.yaml's) the LoRA model's rollouts scored 3% over 26
# batches (experiments/smollm2_rl/README.md), too few right answers for GRPO's groups to compare
task=(min_terms=3 max_terms=3 max_digits=1)
terms=("${task[@]/#/data.sources.0.datasets.basic_arithmetic.}")
test_terms=("${task[@]/#/task.options.config.}")

lora=$out/lora/export
start=$out/on_lora/export
train lora "$out/lora" experiment=short_answers method=lora "${terms[@]}"
evaluate greedy base "${test_terms[@]}"  # the base zero-shot, for scale (a second copy, while lora trains)
after "$lora"
train on_lora "$out/on_lora" experiment=short_answers finetuned="$lora" lr=3e-4 "$held" "${terms[@]}"
reinforce lora_rl_lr3e-5 method=lora_rl init="$lora" lr=3e-5 "${terms[@]}"  # a second copy, while on_lora trains
after "$start"
reinforce on_lora_rl_lr3e-5 method=l2d_rl init="$start" "$held" method.reinforce.x1_temperature=0.5 lr=3e-5 \
  "${terms[@]}"

# protocol:levels per L2D arm (levels 1 is the LoRA model, exact at t = 0: the lora row); longest first
declare -A scores=([on_lora]="paper:8 greedy:16 paper:2 greedy:8 greedy:2"
  [on_lora_rl_lr3e-5]="paper:8 greedy:16 paper:2 greedy:8 greedy:4 greedy:2 paper:16")
token_arms=(lora lora_rl_lr3e-5)
score_overrides=("${test_terms[@]}")
for arm in "${token_arms[@]}"; do score_token "$arm"; done
for arm in on_lora on_lora_rl_lr3e-5; do score_levels "$arm"; done

# Once every score exists (another copy may still be scoring): the paired comparisons and the report.
every_score() {
  local protocol
  for protocol in greedy paper; do results "$protocol" '' "${token_arms[@]}"; done
  levels_scored "${!scores[@]}"
}
ls $(every_score) > /dev/null 2>&1 || exit 0
validation_accuracy lora_rl_lr3e-5 on_lora_rl_lr3e-5  # half-way / end
for protocol in greedy paper; do
  for arm in on_lora on_lora_rl_lr3e-5; do more_levels "$protocol" "$arm"; done  # more steps, same model
  # the match at levels 8, and every arm against the LoRA model it started from
  python experiments/smollm2_rl/compare.py $(results "$protocol" '' lora_rl_lr3e-5) \
    $(results "$protocol" _levels8 on_lora_rl_lr3e-5 on_lora)
  python experiments/smollm2_rl/compare.py $(results "$protocol" '' lora) $(results "$protocol" '' lora_rl_lr3e-5) \
    $(results "$protocol" _levels8 on_lora on_lora_rl_lr3e-5)
  for levels in 2 8; do  # what RL through the chain changed, at the same levels
    python experiments/smollm2_rl/compare.py $(results "$protocol" "_levels$levels" on_lora on_lora_rl_lr3e-5)
  done
done
python -m l2d.report out="$out/report" inputs="[$out]"
column -t -s $'\t' "$out/stages.tsv"
