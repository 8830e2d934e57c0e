#!/usr/bin/env bash
# Reproduces experiments/smollm2_gsm8k: the same data, steps and seed for every method, then every
# evaluation, then the report. Run from the repository root.
#
#   bash experiments/smollm2_gsm8k/run.sh gpu train      # on a GPU: train base-line methods and L2D variants
#   bash experiments/smollm2_gsm8k/run.sh gpu evaluate   # then score them (resumable: finished results are kept)
#   bash experiments/smollm2_gsm8k/run.sh cpu all        # a CPU-sized rehearsal of the whole pipeline
#
# GSM8K comes from the hub; offline, copy GSM8K's train split (openai/gsm8k main, JSONL) onto the machine
# and point L2D_GSM8K at it (or put it under $L2D_DATA, see the README's "Data offline").
set -euo pipefail
scale=${1:?cpu or gpu}; stage=${2:-all}
root=${RUNS:-experiments/runs/smollm2_gsm8k_$scale}
mkdir -p "$root"

if [[ $scale == gpu ]]; then
  # The GSM8K score is the held-out slice of train (gsm8k_heldout), the only GSM8K split an offline machine has.
  gsm8k=${L2D_GSM8K:+task.options.path=$L2D_GSM8K}
  data=(data=gsm8k_reasoning_gym ${L2D_GSM8K:+data.sources.0.path=$L2D_GSM8K}); epochs=2; limit=200; batch=64
  levels=(1 2 4 16 32)
  methods=(lora full l2d_lora l2d_lora_cosmap l2d_full)
  tasks=("task=gsm8k_heldout $gsm8k limit=$limit" "task=reasoning_gym/chain_sum limit=$limit"
         "task=reasoning_gym/basic_arithmetic limit=$limit" "task=humaneval limit=40 samples=10")
  scaling=("task=gsm8k_heldout $gsm8k limit=$limit" "task=reasoning_gym/chain_sum limit=$limit")
  extra=()
else  # CPU rehearsal of the whole pipeline in about an hour: little data, one task, short generations
  data=(data=reasoning_gym data.sources.0.size=60); epochs=1; limit=20; batch=20; levels=(1 2 4)
  methods=(lora l2d_lora)
  tasks=("task=reasoning_gym/chain_sum limit=$limit")
  scaling=("${tasks[@]}")
  extra=(max_new_tokens=64)
fi
train() {  # name, overrides...
  local name=$1; shift
  [[ -f $root/$name/export/l2d_config.json || -f $root/$name/export/l2d_finetune.json ]] && return
  python -m l2d.train "~experiment" "${data[@]}" trainer.max_epochs=$epochs seed=0 "$@" hydra.run.dir="$root/$name"  # the bare, paper-like defaults
}
evaluate() {  # out name, overrides...
  local name=$1; shift
  [[ -f $root/eval/$name/results.json ]] && return
  python -m l2d.evaluate progress=false batch_size=$batch seed=0 "${extra[@]}" "$@" hydra.run.dir="$root/eval/$name"
}

declare -A overrides=([lora]="method=lora" [full]="method=full"
                       [l2d_lora]="method=l2d_lora method.guidance=true"
                       [l2d_lora_cosmap]="method=l2d_lora method.guidance=true timestep_sampling=cosmap"
                       [l2d_full]="method=l2d_full method.guidance=true")

if [[ $stage == train || $stage == all ]]; then
  for m in "${methods[@]}"; do train "$m" ${overrides[$m]}; done
fi

if [[ $stage == evaluate || $stage == all ]]; then
  for i in "${!tasks[@]}"; do
    t=${tasks[$i]}
    evaluate "base_$i" $t
    for m in "${methods[@]}"; do evaluate "${m}_$i" $t checkpoint="$root/$m/export"; done
  done
  # Claims 2 and 4: accuracy against steps, Euler at 15 NFE, the adaptive solver's NFE; then guidance.
  for t in "${scaling[@]}"; do
    tag=${t%% *}; tag=${tag#task=}; tag=${tag//\//_}
    for n in "${levels[@]}"; do evaluate "steps_${tag}_$n" $t checkpoint="$root/l2d_lora/export" solver.levels=$n; done
    evaluate "euler_$tag" $t checkpoint="$root/l2d_lora/export" solver=euler
    evaluate "adaptive_$tag" $t checkpoint="$root/l2d_lora/export" solver=fehlberg2
    for w in 1.5 2.0; do evaluate "guidance_${tag}_$w" $t checkpoint="$root/l2d_lora/export" guidance=$w; done
  done
  python -m l2d.report inputs="$root" out="$root/report"
fi
