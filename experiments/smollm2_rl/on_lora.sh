#!/usr/bin/env bash
# experiments/smollm2_rl/on_lora.sh: L2D on the LoRA model + RL, the fair match for LoRA + RL. L2D on the frozen
# base starts 18 points behind LoRA (smollm2_short_answers), so run.sh's and sigma8.sh's RL arms cannot be told
# apart from LoRA + RL by their start alone; L2D on the LoRA model starts where LoRA is (it is the LoRA model at
# t = 0). Arms, on smollm2_short_answers' LoRA export (trained here with run.sh's command when missing):
#   lora_rl      run.sh's GRPO in token space on it (one action per token)
#   on_lora      L2D on the LoRA model with w_d held open (smollm2_short_answers/sweep.sh's on_lora_w_d_held)
#   on_lora_rl   run.sh's GRPO through the chain on it, w_d still held, x̂ sampled at 0.5 (as sigma8.sh)
#   on_lora_sigma8, on_lora_sigma8_rl   the same two at σ 8, where x_t is readable early enough for the chain to
#                refine (sigma8.sh: steps paid there after RL, but from the frozen base's 20%)
#   lora_rl_lr3e-5, lora_rl_lr1e-5, lora_rl_kl0.04   LoRA + RL's candidates, chosen on validation
#   on_lora_rl_lr3e-4, on_lora_rl_lr3e-5   the chain's learning rate beside on_lora_rl's 1e-4, as LoRA + RL's
#   lora_rl_lr3e-5_seed{1,2,3}, on_lora_rl_lr3e-5_seed{1,2,3}   the two chosen arms with three more seeds
# then every arm on the 500 test problems under both protocols (the LoRA arms once, the L2D arms at levels 8, 2
# and 16, the chosen one also at 4; to t = 1), the paired comparisons and the report.
#
#   bash experiments/smollm2_rl/on_lora.sh [OUT]     (OUT: experiments/runs/smollm2_rl_on_lora; ARMS: as run.sh)
#
# Resumable like run.sh, and like it two copies may run at once (e.g. one thread each; experiments/stage.sh).
set -euo pipefail
arms=${ARMS:-experiments/runs/smollm2_short_answers}
out=${1:-experiments/runs/smollm2_rl_on_lora}
source "$(dirname "$0")/arms.sh"
held='module.lr_multipliers={w_d:0,conditioning:0}'  # w_d(t) = t on every channel, as the path started

lora=$arms/lora/export
start=$out/on_lora/export
# smollm2_short_answers/run.sh's arm
train lora "$arms/lora" experiment=short_answers method=lora trainer.val_check_interval=0.25
after "$lora"
train on_lora "$out/on_lora" experiment=short_answers finetuned="$lora" lr=3e-4 "$held"
reinforce lora_rl method=lora_rl init="$lora"  # a second copy takes this while the first trains on_lora
after "$start"
reinforce on_lora_rl method=l2d_rl init="$start" "$held" method.reinforce.x1_temperature=0.5
# LoRA + RL's learning rate, chosen on the validation problems as every arm's is: at the chain's 1e-4 it drifted
# from the LoRA model (KL 6 nats a token) and lost 8 points, so smaller steps are tried.
token_arms=(lora_rl)
for lr in 3e-5 1e-5; do
  reinforce "lora_rl_lr$lr" method=lora_rl init="$lora" lr="$lr"
  token_arms+=("lora_rl_lr$lr")
done
sigma8=$out/on_lora_sigma8/export
train on_lora_sigma8 "$out/on_lora_sigma8" experiment=short_answers finetuned="$lora" lr=3e-4 sigma=8 "$held"
# GRPO's usual KL weight (DeepSeekMath's β) at the chain's learning rate: does a penalty hold the token-space
# policy near the LoRA model, where 1e-4 without one drifted? (a second copy takes it while the first trains σ 8)
reinforce lora_rl_kl0.04 method=lora_rl init="$lora" method.reinforce.kl=0.04
token_arms+=(lora_rl_kl0.04)
after "$sigma8"
reinforce on_lora_sigma8_rl method=l2d_rl init="$sigma8" "$held" method.reinforce.x1_temperature=0.5
# The chain's learning rate, chosen on validation like LoRA + RL's, so that neither side of the match is untuned
# (the two candidates suit two copies at once)
chain_lrs=(3e-4 3e-5)
for lr in "${chain_lrs[@]}"; do
  reinforce "on_lora_rl_lr$lr" method=l2d_rl init="$start" "$held" method.reinforce.x1_temperature=0.5 lr="$lr"
done
# The two chosen arms again with other seeds (the prompts' order and every noise stream): how far one RL run moves
# by chance, and the arms' means over seeds (each seed's pair suits two copies at once).
seeds=(1 2 3)
for seed in "${seeds[@]}"; do
  reinforce "lora_rl_lr3e-5_seed$seed" method=lora_rl init="$lora" lr=3e-5 seed="$seed"
  reinforce "on_lora_rl_lr3e-5_seed$seed" method=l2d_rl init="$start" "$held" method.reinforce.x1_temperature=0.5 \
    lr=3e-5 seed="$seed"
done

# protocol:levels per L2D arm (levels 1 is the LoRA model for every one, exact at t = 0: the lora row); the RL arm
# chosen on validation at every levels under both protocols, as the steps target asks; longest first so two copies
# end together
declare -A scores=([on_lora]="greedy:8 greedy:2 paper:8 paper:2 greedy:16"
  [on_lora_rl]="greedy:8 greedy:2 paper:8 paper:2 greedy:16" [on_lora_sigma8]="greedy:2 greedy:8 greedy:16 paper:2 paper:8"
  [on_lora_sigma8_rl]="paper:16 paper:8 greedy:16 paper:2 greedy:8 greedy:2")
for lr in "${chain_lrs[@]}"; do
  scores[on_lora_rl_lr$lr]="paper:8 greedy:16 paper:2 greedy:8 greedy:2"
done
scores[on_lora_rl_lr3e-5]+=" paper:16 paper:4 greedy:4"
for seed in "${seeds[@]}"; do
  scores[on_lora_rl_lr3e-5_seed$seed]="paper:8 greedy:16 paper:2 greedy:8 greedy:4 greedy:2"
done
seed_token_arms=("${seeds[@]/#/lora_rl_lr3e-5_seed}")
levels_arms=(on_lora on_lora_rl on_lora_sigma8 on_lora_sigma8_rl "${chain_lrs[@]/#/on_lora_rl_lr}"
  "${seeds[@]/#/on_lora_rl_lr3e-5_seed}")
# What exists first is scored first, so that a copy free while the other trains has work.
for protocol in greedy paper; do
  evaluate "$protocol" lora checkpoint="$lora"
done
for arm in "${levels_arms[@]:0:2}"; do score_levels "$arm"; done
for arm in "${token_arms[@]}" "${seed_token_arms[@]}"; do score_token "$arm"; done  # the candidates finish last
for arm in "${levels_arms[@]:2}"; do score_levels "$arm"; done

# Once every score exists (another copy may still be scoring): the paired comparisons and the report.
chain_arms=(on_lora_rl "${chain_lrs[@]/#/on_lora_rl_lr}")  # RL through the σ 64 chain, by learning rate
diffusion_arms=(on_lora "${chain_arms[@]}" on_lora_sigma8 on_lora_sigma8_rl)
seeded() {  # protocol, suffix, arm: its seeds' results.json, joined by + (compare.py's mean over them)
  local paths=($(results "$1" "$2" "$3" "${seeds[@]/#/$3_seed}"))
  local IFS=+
  echo "${paths[*]}"
}
every_score() {  # every scoring's results.json, as scored above
  local protocol
  for protocol in greedy paper; do results "$protocol" '' lora "${token_arms[@]}" "${seed_token_arms[@]}"; done
  levels_scored "${levels_arms[@]}"
}
ls $(every_score) > /dev/null 2>&1 || exit 0
validation_accuracy "${token_arms[@]}" "${chain_arms[@]}" "${seed_token_arms[@]}" \
  "${seeds[@]/#/on_lora_rl_lr3e-5_seed}"  # the choice
for protocol in greedy paper; do
  for arm in "${diffusion_arms[@]}"; do  # more steps, same model
    more_levels "$protocol" "$arm"
  done
  for reference in "${token_arms[@]}" lora; do  # the token-space arms against the diffusion ones at levels 8
    python experiments/smollm2_rl/compare.py $(results "$protocol" '' "$reference") \
      $(results "$protocol" _levels8 "${diffusion_arms[@]}") $([[ $reference != lora ]] && results "$protocol" '' lora)
  done
  for levels in 2 8; do  # what RL changed, at the same levels
    python experiments/smollm2_rl/compare.py $(results "$protocol" "_levels$levels" on_lora "${chain_arms[@]}")
    python experiments/smollm2_rl/compare.py $(results "$protocol" "_levels$levels" on_lora_sigma8 on_lora_sigma8_rl)
  done
done
# the other seeds: each seed's steps and match, each arm against its first seed, then the means over the seeds
token=lora_rl_lr3e-5 chain=on_lora_rl_lr3e-5  # the two arms chosen on validation
for protocol in greedy paper; do
  for seed in "${seeds[@]}"; do
    more_levels "$protocol" "${chain}_seed$seed"
    python experiments/smollm2_rl/compare.py $(results "$protocol" '' "${token}_seed$seed") \
      $(results "$protocol" _levels8 "${chain}_seed$seed")
  done
  python experiments/smollm2_rl/compare.py $(results "$protocol" '' "$token") $(results "$protocol" '' "${seeds[@]/#/${token}_seed}")
  python experiments/smollm2_rl/compare.py $(results "$protocol" _levels8 "$chain") \
    $(results "$protocol" _levels8 "${seeds[@]/#/${chain}_seed}")
  python experiments/smollm2_rl/compare.py $(seeded "$protocol" _levels2 "$chain") \
    $(for levels in $(levels_of "$protocol" "${chain}_seed1"); do seeded "$protocol" "_levels$levels" "$chain"; done)
  python experiments/smollm2_rl/compare.py $(seeded "$protocol" '' "$token") $(seeded "$protocol" _levels8 "$chain") \
    $(results "$protocol" '' lora)
done
python -m l2d.report out="$out/report" inputs="[$out]"  # every time: an arm added later belongs in it (6 s)
column -t -s $'\t' "$out/stages.tsv"
