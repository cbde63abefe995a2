#!/usr/bin/zsh -f
# complete.zsh FOLDER LINE: what zsh's completion offers at the end of LINE
# (a tab typed there), one a line, with FOLDER (holding _smugoauth) first in
# $fpath: an interactive zsh in a pseudo-terminal (zsh/zpty) runs compinit,
# and a compadd wrapper prints every match between \1 and \2 bytes (which
# the echo of what is typed never holds); \3 marks the end.
zmodload zsh/zpty || exit 2
local fdir=$1 cmdline=$2
zpty z zsh -f -i
zpty -w z "PROMPT= ; RPROMPT= ; fpath=(${(q)fdir} \$fpath)"
zpty -w z 'autoload -Uz compinit; compinit -u -D'
zpty -w z 'compadd() { local -a __h; builtin compadd -A __h "$@"; local x; for x in $__h; do print -rn -- $'"'"'\x01'"'"'"$x"$'"'"'\x02'"'"'; done; builtin compadd "$@" }'
zpty -w z '_complete_done() { print -rn -- $'"'"'\x03'"'"'; exit }; comppostfuncs=(_complete_done)'
zpty -w z 'bindkey "^I" complete-word'
zpty -w -n z "$cmdline"$'\t'
local out line
while zpty -r z line; do
  out+=$line
  [[ $out == *$'\x03'* ]] && break
done
zpty -d z
out=${out%%$'\x03'*}
local -a found
found=(${(f)"$(print -r -- "$out" | grep -ao $'\x01[^\x01\x02]*\x02' | tr -d '\001\002')"})
(( $#found )) && print -rl -- ${(ou)found}
exit 0
