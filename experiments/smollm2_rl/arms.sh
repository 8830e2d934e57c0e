# Sourced by run.sh, sigma8.sh and on_lora.sh once they have set `out`: the RL stage they all use, so every RL arm
# runs the same GRPO settings (the scoring is experiments/stage.sh's `evaluate`).
steps=${STEPS:-60}   # rollout batches of 4 prompts x 16 completions (the README: what one costs)
source "$(dirname "${BASH_SOURCE[0]}")/../stage.sh"

reinforce() {  # arm, overrides...: resumes from the arm's last checkpoint
  local arm=$1; shift
  train "$arm" "$out/$arm" experiment=short_answers method.reinforce.steps="$steps" method.reinforce.group_size=16 \
    method.reinforce.updates=2 lr=1e-4 callbacks.model_checkpoint.every_n_train_steps=10 \
    trainer.val_check_interval=0.5 "$@"  # last, so an arm's own override (e.g. lr) wins
}

