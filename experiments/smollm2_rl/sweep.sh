#!/usr/bin/env bash
# experiments/smollm2_rl/sweep.sh: RL settings chosen on the validation problems (100 of the short-answer
# validation set, generator seed 2000000; never the test problems), after run.sh's l2d_rl arm:
#   x1_t0.5_p8   x̂ sampled at temperature 0.5 in the rollouts (closer to the argmax x̂ both protocols score with),
#                8 prompts x 8 completions per batch (more prompts, less noise per update), else as run.sh
# Each arm and its start scored greedily to t = 1 at levels 2 and 8, and under the rollout policy (x̂ sampled
# at temperature 1, the emitted token at 1, 4 completions) at levels 2, 8, 16.
#
#   bash experiments/smollm2_rl/sweep.sh [OUT]     (OUT: experiments/runs/smollm2_rl; ARMS as run.sh's)
set -euo pipefail
arms=${ARMS:-experiments/runs/smollm2_short_answers}
out=${1:-experiments/runs/smollm2_rl}

train() {  # name, overrides...
  local name=$1; shift
  [[ -d $out/$name/export ]] && return
  python -m l2d.train experiment=short_answers method=l2d_rl init="$arms/l2d_base/export" method.reinforce.steps=60 \
    method.reinforce.updates=2 lr=1e-4 callbacks.model_checkpoint.every_n_train_steps=10 trainer.val_check_interval=0.5 \
    trainer.enable_progress_bar=false "$@" hydra.run.dir="$out/$name"
}

validate() {  # export, name, overrides...
  local export=$1 name=$2; shift 2
  [[ -f $out/validation/$name/results.json ]] && return
  python -m l2d.evaluate checkpoint="$export" task=arithmetic task.options.seed=2000000 task.options.size=100 \
    max_new_tokens=8 batch_size=100 progress=false "$@" hydra.run.dir="$out/validation/$name"
}

train l2d_rl_x1_t0.5_p8 method.reinforce.x1_temperature=0.5 method.reinforce.prompts_per_step=8 \
  method.reinforce.group_size=8

for arm in l2d_base l2d_rl l2d_rl_x1_t0.5_p8; do
  export=$out/$arm/export
  [[ $arm == l2d_base ]] && export=$arms/l2d_base/export
  for levels in 2 8; do
    validate "$export" "${arm}_greedy_levels$levels" protocol=greedy solver.levels=$levels
  done
  for levels in 2 8 16; do
    validate "$export" "${arm}_rollout_policy_levels$levels" protocol=paper solver.levels=$levels \
      solver.x1_temperature=1.0 solver.anneal_x1_temperature=false
  done
done
