#!/usr/bin/env bash
# experiments/smollm2_rl: does RL through L2D's own denoising chain make diffusion steps pay? (issue: "Diffusion
# steps that pay", the paper's future work, Section 6). Four arms on the short-answer task, SmolLM2-135M-Instruct:
#   lora      LoRA next-token finetuning                       (from smollm2_short_answers/run.sh)
#   lora_rl   the same GRPO in token space on it               (method=lora_rl, one action per token)
#   l2d       L2D-LoRA on the frozen base                      (from smollm2_short_answers/run.sh: its l2d_base)
#   l2d_rl    GRPO through the chain on its diffusion path     (method=l2d_rl: every evaluation's x̂ an action)
# Both RL arms: the same prompts (the SFT problems), group size, steps, reward (reasoning-gym's verifier), learning
# rate and seed. Then every arm on the 500 test problems at midpoint levels 1, 2, 4, 8, 16 under both protocols
# (greedy and the paper's sampling, 4 completions), to t = 1 (the RL stage's grid), and the report.
#
#   bash experiments/smollm2_short_answers/run.sh            # first: the lora and l2d arms and their scores
#   bash experiments/smollm2_rl/run.sh [OUT]                  (OUT: experiments/runs/smollm2_rl; ARMS: run.sh's OUT)
#
# Resumable: a finished stage is skipped, an interrupted RL stage resumes from its last checkpoint. Each stage's
# wall time and peak memory go to OUT/stages.tsv.
set -euo pipefail
arms=${ARMS:-experiments/runs/smollm2_short_answers}
out=${1:-experiments/runs/smollm2_rl}
source "$(dirname "$0")/arms.sh"
for export in lora l2d_base; do
  [[ -d $arms/$export/export ]] || { echo "no $arms/$export/export: run experiments/smollm2_short_answers/run.sh first" >&2; exit 1; }
done

# The baseline first (token space: a rollout is one LM pass per token, minutes), then the chain.
reinforce lora_rl method=lora_rl init="$arms/lora/export"
for protocol in greedy paper; do
  evaluate "$protocol" lora_rl checkpoint="$out/lora_rl/export"
done
reinforce l2d_rl method=l2d_rl init="$arms/l2d_base/export"

# Most informative first: the steps question (levels 2 against 8 and 16) under both protocols.
for levels in 2 8 16; do
  for protocol in greedy paper; do
    evaluate "$protocol" "l2d_rl_levels$levels" checkpoint="$out/l2d_rl/export" solver.levels="$levels"
  done
done
for levels in 2 8 16; do  # L2D before RL, greedy to t = 1 as the RL arm (run.sh scores it greedily to 0.9)
  evaluate greedy "l2d_levels${levels}_t1.0" checkpoint="$arms/l2d_base/export" solver.levels="$levels"
done
for levels in 4 1; do
  for protocol in greedy paper; do
    evaluate "$protocol" "l2d_rl_levels$levels" checkpoint="$out/l2d_rl/export" solver.levels="$levels"
  done
done
for levels in 2 8 16; do  # x̂ sampled as in the rollouts (temperature 1, not annealed), the emitted token greedy
  evaluate greedy "l2d_rl_levels${levels}_x1_sampled" checkpoint="$out/l2d_rl/export" solver.levels="$levels" \
    solver.x1_temperature=1.0 solver.anneal_x1_temperature=false
done

stage report "$out/report/report.md" python -m l2d.report out="$out/report" \
  inputs="[$out,$arms/eval/greedy/lora,$arms/eval/paper/lora,$arms/eval/paper/l2d_base_levels2_t1.0,$arms/eval/paper/l2d_base_levels4_t1.0,$arms/eval/paper/l2d_base_levels8_t1.0,$arms/eval/paper/l2d_base_levels16_t1.0]"
column -t -s $'\t' "$out/stages.tsv"
