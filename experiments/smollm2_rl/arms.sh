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


# Scoring on the test problems. An L2D arm's scores are `scores[arm]`, protocol:levels pairs, or
# protocol:levels:t_start where the chain starts at t_start > 0 (the caller declares `declare -A scores`);
# `score_overrides` goes to every scoring of an export (a task's options, say).
score_overrides=()
score_name() {  # arm, levels, t_start or nothing: the scoring's name
  echo "$1_levels$2${3:+_from$3}"
}
score_levels() {  # arm: its scores
  local score protocol levels from
  after "$out/$1/export"
  for score in ${scores[$1]}; do
    IFS=: read -r protocol levels from <<< "$score"
    evaluate "$protocol" "$(score_name "$1" "$levels" "$from")" checkpoint="$out/$1/export" solver.levels="$levels" \
      ${from:+solver.t_start="$from"} "${score_overrides[@]}"
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
  local arm score protocol levels from
  for arm; do
    for score in ${scores[$arm]}; do
      IFS=: read -r protocol levels from <<< "$score"
      echo "$out/eval/$protocol/$(score_name "$arm" "$levels" "$from")/results.json"
    done
  done
}
levels_of() {  # protocol, arm: the levels it is scored at from t = 0 besides 2, ascending
  local score protocol levels from
  for score in ${scores[$2]}; do
    IFS=: read -r protocol levels from <<< "$score"
    [[ $protocol == "$1" && $levels != 2 && -z $from ]] && echo "$levels"
  done | sort -n
}
more_levels() {  # protocol, arm: its levels 2 against its other levels (compare.py, paired)
  python experiments/smollm2_rl/compare.py $(results "$1" _levels2 "$2") \
    $(for levels in $(levels_of "$1" "$2"); do results "$1" "_levels$levels" "$2"; done)
}
against() {  # protocol, arm, reference (levels or levels:t_start): the arm's other scorings against it, paired
  local protocol=$1 arm=$2 reference=$3 score scored levels from others=()
  for score in ${scores[$arm]}; do
    IFS=: read -r scored levels from <<< "$score"
    [[ $scored == "$protocol" && ${score#*:} != "$reference" ]] || continue
    others+=("$(results "$protocol" '' "$(score_name "$arm" "$levels" "$from")")")
  done
  IFS=: read -r levels from <<< "$reference"
  echo "== $arm, $protocol: against levels $levels from ${from:-0}"
  python experiments/smollm2_rl/compare.py "$(results "$protocol" '' "$(score_name "$arm" "$levels" "$from")")" \
    "${others[@]}"
}
t_start_on_validation() {  # export, candidates...: the chain's start t chosen on the validation problems
  local export=$1 tau
  shift
  after "$export"
  for tau; do  # greedy, levels 2: where skipping the LM's evaluation matters most
    stage "validate from $tau" "$out/validation/from$tau/results.json" python -m l2d.evaluate task=arithmetic \
      task.options.seed=2000000 task.options.size=100 protocol=greedy max_new_tokens=8 batch_size=100 \
      progress=false checkpoint="$export" solver.levels=2 solver.t_start="$tau" hydra.run.dir="$out/validation/from$tau" >&2
  done
  for tau; do after "$out/validation/from$tau/results.json"; done
  python - "$out/validation" "$@" <<'PYTHON'
import json, sys
scores = {tau: json.load(open(f"{sys.argv[1]}/from{tau}/results.json"))["summary"]["score"] for tau in sys.argv[2:]}
print(max(scores, key=lambda tau: (scores[tau], -float(tau))))  # the best; on a tie the earliest
PYTHON
}
validation_accuracy() {  # RL arms...: the greedy validation accuracy logged half-way and at the end
  local arm
  for arm; do
    python -c 'import csv, sys; rows = [" ".join(r[k] for k in r if k.startswith("val/accuracy") and r[k])
                                       for r in csv.DictReader(open(sys.argv[1])) if r.get("val/accuracy")]
print(sys.argv[2], "validation accuracy", " / ".join(rows))' "$out/$arm/metrics.csv" "$arm"
  done
}
