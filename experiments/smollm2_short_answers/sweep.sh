#!/usr/bin/env bash
# experiments/smollm2_short_answers/sweep.sh: the settings swept after the three arms of run.sh, all chosen on the
# validation problems (task=arithmetic with the validation seed 2000000, 200 problems), never on the test ones:
#   sigma 16 and 8 (run.sh's l2d_base arm is sigma 64), the diffusion vocabulary held at its start (lr x 0),
#   cosmap t-sampling, 100 and 400 steps, and L2D on the LoRA model with a lower sigma and w_d held open;
#   then run.sh's L2D-on-LoRA arm from two more random starts (scored on a third problem set too), the same arm
#   with w_d held open from three starts (on all three problem sets), and LoRA for 400 steps.
# Each training run is the default job (experiment=short_answers) with the overrides shown; each is scored at
# midpoint levels 2 and 8 with t_final 0.9, as the arms. Run from the repository root after run.sh (it reuses
# run.sh's LoRA export):
#
#   bash experiments/smollm2_short_answers/sweep.sh [OUT]     (OUT: experiments/runs/smollm2_short_answers_sweep)
#
# Then sigma 8, the setting whose validation accuracy rose with the levels, on run.sh's 500 test problems, and
# the report of the arms with it. Resumable like run.sh: a finished run or score is skipped.
set -euo pipefail
arms=${ARMS:-experiments/runs/smollm2_short_answers}
out=${1:-experiments/runs/smollm2_short_answers_sweep}
mkdir -p "$out"

train() {  # name, overrides...
  local name=$1; shift
  [[ -d $out/$name/export ]] && return
  python -m l2d.train experiment=short_answers trainer.enable_progress_bar=false "$@" hydra.run.dir="$out/$name"
}

score() {  # problem set (test, validation, third), export, name, overrides...: greedy, L2D to t_final 0.9
  local set=$1 export=$2 name=$3; shift 3
  local problems=()  # test: task=arithmetic's own 500 problems, run.sh's
  case $set in
    validation) problems=(task.options.seed=2000000 task.options.size=200) ;;
    third) problems=(task.options.seed=3000000) ;;  # 500 more, see the on-LoRA starts below
  esac
  [[ -f $out/$set/$name/results.json ]] && return
  python -m l2d.evaluate checkpoint="$export" task=arithmetic "${problems[@]}" temperature=0 max_new_tokens=8 \
    batch_size=100 progress=false solver.t_final=0.9 "$@" hydra.run.dir="$out/$set/$name"
}

train sigma16 sigma=16
train sigma8 sigma=8
train sigma16_vocabulary_held sigma=16 'module.lr_multipliers={vocabulary:0}'
train cosmap timestep_sampling=cosmap
train sigma8_vocabulary_held sigma=8 'module.lr_multipliers={vocabulary:0}'
train steps100 data.sources.0.size=1728  # 100 steps of 16: one epoch of half the problems (+ the 128 validation)
train steps400 data.sources.0.size=6528  # 400 steps of 16: one epoch of twice the problems
train on_lora_sigma8_w_d_held finetuned="$arms/lora/export" lr=3e-4 sigma=8 \
  'module.lr_multipliers={w_d:0,conditioning:0}' trainer.val_check_interval=0.5

score validation "$arms/lora/export" lora
for run in sigma16 sigma8 sigma16_vocabulary_held cosmap on_lora_sigma8_w_d_held sigma8_vocabulary_held steps100 steps400; do
  for levels in 2 8; do
    score validation "$out/$run/export" "${run}_levels$levels" solver.levels=$levels
  done
done
for levels in 2 8; do
  score validation "$arms/l2d_base/export" "l2d_base_levels$levels" solver.levels=$levels
  score validation "$out/sigma8/export" "sigma8_levels${levels}_from_0.05" solver.levels=$levels \
    solver.t_start=0.05  # skip the frozen LM's guess at t = 0
done
score validation "$out/sigma8/export" sigma8_levels16 solver.levels=16
score validation "$arms/l2d_base/export" l2d_base_levels2_from_0.05 solver.levels=2 solver.t_start=0.05
score validation "$arms/l2d_on_lora/export" l2d_on_lora_levels8 solver.levels=8
score validation "$out/sigma8_vocabulary_held/export" sigma8_vocabulary_held_levels2_from_0.05 solver.levels=2 \
  solver.t_start=0.05
for levels in 2 8; do  # x̂ sampled at temperature 1, annealed to 0 along t (the paper's option), instead of argmax
  score validation "$arms/l2d_base/export" "l2d_base_levels${levels}_x1_temperature1" solver.levels=$levels \
    solver.x1_temperature=1.0
  score validation "$out/sigma8/export" "sigma8_levels${levels}_x1_temperature1" solver.levels=$levels \
    solver.x1_temperature=1.0
done

for levels in 2 4 8 16; do
  score test "$out/sigma8/export" "sigma8_levels$levels" solver.levels=$levels
done
score test "$out/sigma8/export" sigma8_levels2_from_0.05 solver.levels=2 solver.t_start=0.05

# How much run.sh's l2d_on_lora arm owes to its random start: the same arm with other seeds for the path's start
# and its noise draws, the data unchanged (its problems and their order keep seed 0), on the test problems.
for seed in 1 2; do
  train "on_lora_seed$seed" finetuned="$arms/lora/export" lr=3e-4 seed=$seed data.sources.0.seed=0 data.seed=0
  for levels in 8 2; do
    score test "$out/on_lora_seed$seed/export" "on_lora_seed${seed}_levels$levels" solver.levels=$levels
  done
done
for seed in 1 2; do
  score validation "$out/on_lora_seed$seed/export" "on_lora_seed${seed}_levels8" solver.levels=8
done
# A third problem set (seed 3000000, 500 problems, unseen in training like the others), because the starts gained
# on the test problems and not on the validation ones: LoRA and the on-LoRA starts at levels 2 (their answers at
# levels 8 are the same).
score third "$arms/lora/export" lora
score third "$arms/l2d_on_lora/export" l2d_on_lora_levels2 solver.levels=2
for seed in 1 2; do
  score third "$out/on_lora_seed$seed/export" "on_lora_seed${seed}_levels2" solver.levels=2
done
# w_d held open at its start on the LoRA model at run.sh's sigma 64 (the starts above gain only where w_d reopens)
train on_lora_w_d_held finetuned="$arms/lora/export" lr=3e-4 'module.lr_multipliers={w_d:0,conditioning:0}'
for levels in 8 2; do
  score test "$out/on_lora_w_d_held/export" "on_lora_w_d_held_levels$levels" solver.levels=$levels
  score third "$out/on_lora_w_d_held/export" "on_lora_w_d_held_levels$levels" solver.levels=$levels
done
score validation "$out/on_lora_w_d_held/export" on_lora_w_d_held_levels8 solver.levels=8
for seed in 1 2; do  # the same from the two further starts of the path (seed 1's w_d closed when free)
  name=on_lora_w_d_held_seed$seed
  train "$name" finetuned="$arms/lora/export" lr=3e-4 'module.lr_multipliers={w_d:0,conditioning:0}' seed=$seed \
    data.sources.0.seed=0 data.seed=0
  score test "$out/$name/export" "${name}_levels8" solver.levels=8
  score third "$out/$name/export" "${name}_levels8" solver.levels=8
  score validation "$out/$name/export" "${name}_levels8" solver.levels=8
done
# LoRA for 400 steps, as steps400 (L2D on the base): whether the gap narrows with training.
train lora_steps400 method=lora data.sources.0.size=6528
score validation "$out/lora_steps400/export" lora_steps400
python -m l2d.report inputs="[$arms,$out/test]" out="$out/report"
