# Sourced by run.sh and sigma8.sh once they have set `out`: the RL stage and the scoring both use, so every RL arm
# runs the same GRPO settings and every score the same decoding.
steps=${STEPS:-60}   # rollout batches of 4 prompts x 16 completions (the README: what one costs)
source "$(dirname "${BASH_SOURCE[0]}")/../stage.sh"

reinforce() {  # arm, overrides...: resumes from the arm's last checkpoint
  local arm=$1; shift
  local resume=()
  [[ -f $out/$arm/checkpoints/last.ckpt ]] && resume=("ckpt_path=$out/$arm/checkpoints/last.ckpt")
  stage "train $arm" "$out/$arm/export" python -m l2d.train experiment=short_answers "$@" \
    method.reinforce.steps="$steps" method.reinforce.group_size=16 method.reinforce.updates=2 lr=1e-4 \
    callbacks.model_checkpoint.every_n_train_steps=10 \
    trainer.val_check_interval=0.5 trainer.enable_progress_bar=false "${resume[@]}" hydra.run.dir="$out/$arm"
}

evaluate() {  # protocol, name, overrides...
  local protocol=$1 name=$2; shift 2
  stage "evaluate $protocol $name" "$out/eval/$protocol/$name/results.json" python -m l2d.evaluate task=arithmetic \
    protocol="$protocol" max_new_tokens=8 batch_size=100 progress=false "$@" hydra.run.dir="$out/eval/$protocol/$name"
}
