#!/usr/bin/env bash
# experiments/bench/gpu.sh: the GPU checks of issue 42 in one call that fits 9 minutes. From the repository root:
#
#   bash experiments/bench/gpu.sh OUT [WHEELS] [STEPS]      (WHEELS, or $L2D_WHEELS: see below; STEPS: "1 2 3 4")
#
#   1  versions, and which attention kernel runs the diffusion path's cross-attention at the Llama-3.2-1B
#      training shape (q 4x32x2048x64 bf16 on k/v 4x8x2048x64, the path's mask): cuDNN, efficient, flash, math,
#      default; forward and backward, ms, peak memory (experiments/bench/attention_probe.py)
#   2  python3 -m l2d.bench training rows at the Llama-1B shape (random weights; l2d_lora and lora, 4 x (1024 +
#      1024) tokens, gradient checkpointing as experiment=paper_llama1b): tokens/s, peak GB, MFU
#   3  python3 -m l2d.bench decoding rows (SmolLM2-135M architecture, random weights: speed does not depend on their
#      values): transformers, plain, L2D midpoint levels 8 on CUDA graphs, unmerged and merged LoRA, batch 1 and
#      64, 32 new tokens, with TORCH_LOGS=recompiles,cudagraphs (a graph compiled or recorded twice shows there)
#   4  experiments/bench/strategies.sh: trainer=ddp and trainer=fsdp train the tiny model 3 steps, resume to 5
#
# Each step runs under its own timeout (seconds: STEP1_S 60, STEP2_S 150, STEP3_S 190, STEP4_S 130; 530 in all)
# and writes OUT/<step>.log as it runs; OUT/steps.tsv gets one line per step as it ends (name, exit status, seconds:
# 124 is a timeout). OUT/versions.txt and OUT/nvidia-smi.txt say what ran it.
#
# WHEELS: a machine without hydra-core, omegaconf, gguf or reasoning-gym (the lent GPU image) installs them first
# from that directory of wheels: a directory with an on-device.sh (the .whl/ that the GPU preparation tool writes
# into the checkout) has it sourced from the checkout root; any other directory of *.whl / *.tar.gz is installed
# with pip into a fresh directory on PYTHONPATH. Without WHEELS the installed packages are used. It calls python3:
# the lent GPU image's interpreter with torch is python3.
set -uo pipefail
out=${1:?usage: bash experiments/bench/gpu.sh OUT [WHEELS] [STEPS]}
wheels=${2:-${L2D_WHEELS:-}}
steps=${3:-1 2 3 4}
for s in $steps; do
  [[ $s == [1-4] ]] || { echo "gpu.sh: unknown step '$s' (allowed: 1 2 3 4)" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
printf 'step\texit\tseconds\n' > "$out/steps.tsv"

installed() { echo "gpu.sh: installing from $wheels failed (OUT/install.log)" >&2; exit 2; }
if [[ -n $wheels ]]; then
  if [[ -f $wheels/on-device.sh ]]; then
    # shellcheck disable=SC1091
    source "$wheels/on-device.sh" > "$out/install.log" 2>&1 || installed
  else
    site=$(mktemp -d /tmp/l2d-site.XXXX)
    shopt -s nullglob
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation \
      --target "$site" "$wheels"/*.whl "$wheels"/*.tar.gz > "$out/install.log" 2>&1 || installed
    shopt -u nullglob
    export PYTHONPATH=$site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$out/inductor}

step() {  # name, seconds, command...: its output to OUT/name.log, one line to steps.tsv when it ends
  local name=$1 limit=$2; shift 2
  echo "== $name (at most ${limit} s): $*"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" > "$out/$name.log" 2>&1
  local status=$?
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" | tee -a "$out/steps.tsv"
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c 'import sys, torch, transformers, lightning, peft; print(sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "transformers", transformers.__version__, "lightning", lightning.__version__,
"peft", peft.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")' \
  > "$out/versions.txt" 2>&1

for s in $steps; do
  case $s in
    1) step attention_kernels "${STEP1_S:-60}" python3 experiments/bench/attention_probe.py \
         --out "$out/attention.json" ;;
    2) step bench_train "${STEP2_S:-150}" python3 -m l2d.bench model=llama1b_random decode.enabled=false \
         'train.methods=[l2d_lora,lora]' 'train.shapes=[{batch:4,prompt:1024,answer:1024}]' \
         train.gradient_checkpointing=true repeats=2 hydra.run.dir="$out/bench_train" ;;
    3) TORCH_LOGS=recompiles,cudagraphs step bench_decode "${STEP3_S:-190}" python3 -m l2d.bench model=smollm2_random \
         train.enabled=false 'decode.merge_lora=[false,true]' repeats=2 hydra.run.dir="$out/bench_decode" ;;
    4) if [[ -f experiments/bench/strategies.sh ]]; then
         LIMIT_S=${STRATEGY_RUN_S:-50} step strategies "${STEP4_S:-130}" bash experiments/bench/strategies.sh \
           "$out/strategies"
       else
         printf 'strategies\tmissing experiments/bench/strategies.sh\t0\n' | tee -a "$out/steps.tsv"
       fi ;;
  esac
done
column -t -s $'\t' "$out/steps.tsv"
