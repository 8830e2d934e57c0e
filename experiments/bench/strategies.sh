#!/usr/bin/env bash
# experiments/bench/strategies.sh: on a CUDA machine, each training strategy l2d offers (trainer=ddp, trainer=fsdp)
# trains the tiny model 3 steps, then resumes into the same directory to step 5; one row per strategy: exit status
# and seconds of both runs, the training steps metrics.csv holds (0-4, each once, when the resume is right) and
# whether the export was written. From the repository root:
#
#   bash experiments/bench/strategies.sh [OUT]      (OUT: experiments/runs/strategies, emptied first)
#
# Environment: DEVICES (default: every GPU nvidia-smi lists), LIMIT_S (each run's timeout, default 600), PYTHON
# (default python3, the interpreter with torch on the lent GPU images), ACCELERATOR (default gpu; cpu with DEVICES=2
# rehearses it with gloo). Each run's log is OUT/<strategy>/*.log. Exits 0 only if every row is right.
# DeepSpeed is not offered: docs/distributed.md says why.
set -uo pipefail
out=${1:-experiments/runs/strategies}
python=${PYTHON:-python3}
limit=${LIMIT_S:-600}
accelerator=${ACCELERATOR:-gpu}
devices=${DEVICES:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
if [[ ! $devices =~ ^[1-9][0-9]*$ ]]; then
  echo "strategies.sh: no GPU listed by nvidia-smi -L (set DEVICES to override)" >&2
  exit 2
fi
rm -rf "$out" && mkdir -p "$out"

settings=("~experiment" model=tiny data.sources.0.size=40 data.val_size=8 data.micro_batch_size=2
          batch_size=$((2 * devices)) trainer.accelerator="$accelerator" trainer.devices="$devices"
          callbacks.model_checkpoint.every_n_train_steps=1 trainer.enable_progress_bar=false
          trainer.enable_model_summary=false)

timed() {  # log, command...: prints "exit seconds"
  local log=$1; shift
  local start; start=$(date +%s%N)
  timeout "$limit" "$@" > "$log" 2>&1
  local status=$? tenths=$((($(date +%s%N) - start) / 100000000))
  printf '%s %d.%d' "$status" $((tenths / 10)) $((tenths % 10))
}

steps_logged() {  # metrics.csv: the steps with a training loss, in file order (a step twice shows twice)
  "$python" - "$1" <<'EOF'
import csv, sys
try:
    with open(sys.argv[1], newline="") as handle:
        print(",".join(row["step"] for row in csv.DictReader(handle) if row.get("train/loss")) or "-")
except OSError:
    print("-")
EOF
}

failed=0
printf '%-9s %-8s %-9s %-8s %-10s %-9s %-10s %s\n' strategy devices train_rc train_s resume_rc resume_s steps export
for strategy in ddp fsdp; do
  run="$out/$strategy"
  mkdir -p "$run"
  read -r train_rc train_s < <(timed "$run/train.log" "$python" -m l2d.train "${settings[@]}" trainer="$strategy" \
    trainer.max_steps=3 hydra.run.dir="$run/run")
  read -r resume_rc resume_s < <(timed "$run/resume.log" "$python" -m l2d.train "${settings[@]}" \
    trainer="$strategy" trainer.max_steps=5 ckpt_path="$run/run/checkpoints/last.ckpt" hydra.run.dir="$run/run")
  steps=$(steps_logged "$run/run/metrics.csv")
  export_written=$([[ -f $run/run/export/diffusion_path.safetensors ]] && echo yes || echo no)
  printf '%-9s %-8s %-9s %-8s %-10s %-9s %-10s %s\n' "$strategy" "$devices" "$train_rc" "$train_s" "$resume_rc" \
    "$resume_s" "$steps" "$export_written"
  [[ $train_rc == 0 && $resume_rc == 0 && $steps == 0,1,2,3,4 && $export_written == yes ]] || failed=1
done
exit $failed
