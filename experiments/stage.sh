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
