# Sourced by the experiments' run.sh scripts once they have set `out`: `stage NAME DONE COMMAND...` runs COMMAND
# unless the file DONE exists (so a script resumes where it stopped) and appends the stage's wall time and peak
# memory (/usr/bin/time) to $out/stages.tsv. Two copies of a script may run at once: a stage the other copy is
# running is skipped (its lock), and `after PATH` waits for what another copy's stage makes.
mkdir -p "$out"
[[ -f $out/stages.tsv ]] || printf 'stage\twall_s\tpeak_rss_mb\n' > "$out/stages.tsv"

stage() {  # name, file that exists once done, command...
  local name=$1 done=$2 lock
  shift 2
  [[ -e $done ]] && return
  exec {lock}>"$out/.lock.${name// /_}"
  flock -n "$lock" || { exec {lock}>&-; return 0; }
  if [[ ! -e $done ]]; then  # done by the other copy between the check and the lock
    /usr/bin/time -f "%e %M" -o "$out/.time.$BASHPID" "$@"
    read -r wall rss < "$out/.time.$BASHPID" && rm -f "$out/.time.$BASHPID"
    printf '%s\t%.0f\t%.0f\n' "$name" "$wall" "$((rss / 1024))" >> "$out/stages.tsv"
  fi
  exec {lock}>&-
}

after() {  # path: wait until it exists (another copy may be making it)
  until [[ -e $1 ]]; do sleep 30; done
}

train() {  # name, run directory, overrides...: a `python -m l2d.train` stage, resumed from the run's last checkpoint
  local name=$1 directory=$2 resume=()
  shift 2
  [[ -f $directory/checkpoints/last.ckpt ]] && resume=("ckpt_path=$directory/checkpoints/last.ckpt")
  stage "train $name" "$directory/export" python -m l2d.train "$@" trainer.enable_progress_bar=false "${resume[@]}" \
    hydra.run.dir="$directory"
}

# The short-answer arithmetic scoring (smollm2_short_answers, smollm2_rl): every arm decoded and scored alike.
evaluate() {  # protocol, name, overrides...
  local protocol=$1 name=$2; shift 2
  stage "evaluate $protocol $name" "$out/eval/$protocol/$name/results.json" python -m l2d.evaluate task=arithmetic \
    protocol="$protocol" max_new_tokens=8 batch_size=100 progress=false "$@" hydra.run.dir="$out/eval/$protocol/$name"
}
