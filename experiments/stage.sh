# Sourced by the experiments' run.sh scripts once they have set `out`: `stage NAME DONE COMMAND...` runs COMMAND
# unless the file DONE exists (so a script resumes where it stopped) and appends the stage's wall time and peak
# memory (/usr/bin/time) to $out/stages.tsv.
mkdir -p "$out"
[[ -f $out/stages.tsv ]] || printf 'stage\twall_s\tpeak_rss_mb\n' > "$out/stages.tsv"

stage() {  # name, file that exists once done, command...
  local name=$1 done=$2; shift 2
  [[ -e $done ]] && return
  /usr/bin/time -f "%e %M" -o "$out/.time" "$@"
  read -r wall rss < "$out/.time"
  printf '%s\t%.0f\t%.0f\n' "$name" "$wall" "$((rss / 1024))" >> "$out/stages.tsv"
}
