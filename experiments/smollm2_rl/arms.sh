# Sourced by run.sh, sigma8.sh, on_lora.sh and three_terms.sh once they have set `out`: the RL stage they all use,
# so every RL arm runs the same GRPO settings, and the scoring of the arms' exports and their comparisons (each
# scoring is experiments/stage.sh's `evaluate`).
steps=${STEPS:-60}   # rollout batches of 4 prompts x 16 completions (the README: what one costs)
source "$(dirname "${BASH_SOURCE[0]}")/../stage.sh"

reinforce() {  # arm, overrides...: resumes from the arm's last checkpoint
  local arm=$1; shift
  train "$arm" "$out/$arm" experiment=short_answers method.reinforce.steps="$steps" method.reinforce.group_size=16 \
    method.reinforce.updates=2 lr=1e-4 callbacks.model_checkpoint.every_n_train_steps=10 \
    trainer.val_check_interval=0.5 "$@"  # last, so an arm's own override (e.g. lr) wins
}


# Scoring on the test problems. An L2D arm's scores are `scores[arm]`, protocol:levels pairs (the caller declares
# `declare -A scores`); `score_overrides` goes to every scoring of an export (a task's options, say).
score_overrides=()
score_levels() {  # arm: its scores
  local score
  after "$out/$1/export"
  for score in ${scores[$1]}; do
    evaluate "${score%:*}" "$1_levels${score#*:}" checkpoint="$out/$1/export" solver.levels="${score#*:}" \
      "${score_overrides[@]}"
  done
}
score_token() {  # arm: under both protocols
  after "$out/$1/export"
  evaluate greedy "$1" checkpoint="$out/$1/export" "${score_overrides[@]}"
  evaluate paper "$1" checkpoint="$out/$1/export" "${score_overrides[@]}"
}
results() {  # protocol, suffix, arms...: their results.json
  local protocol=$1 suffix=$2 arm
  shift 2
  for arm; do echo "$out/eval/$protocol/$arm$suffix/results.json"; done
}
levels_scored() {  # arms...: the results.json of each one's scores
  local arm score
  for arm; do
    for score in ${scores[$arm]}; do results "${score%:*}" "_levels${score#*:}" "$arm"; done
  done
}
levels_of() {  # protocol, arm: the levels it is scored at besides 2, ascending
  local score
  for score in ${scores[$2]}; do [[ ${score%:*} == "$1" && ${score#*:} != 2 ]] && echo "${score#*:}"; done | sort -n
}
more_levels() {  # protocol, arm: its levels 2 against its other levels (compare.py, paired)
  python experiments/smollm2_rl/compare.py $(results "$1" _levels2 "$2") \
    $(for levels in $(levels_of "$1" "$2"); do results "$1" "_levels$levels" "$2"; done)
}
validation_accuracy() {  # RL arms...: the greedy validation accuracy logged half-way and at the end
  local arm
  for arm; do
    python -c 'import csv, sys; rows = [" ".join(r[k] for k in r if k.startswith("val/accuracy") and r[k])
                                       for r in csv.DictReader(open(sys.argv[1])) if r.get("val/accuracy")]
print(sys.argv[2], "validation accuracy", " / ".join(rows))' "$out/$arm/metrics.csv" "$arm"
  done
}
