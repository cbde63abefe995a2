#!/bin/bash
# complete.bash SCRIPT LINE [BASH_COMPLETION]: what the bash completion SCRIPT
# offers at the end of LINE, one a line -- as bash calls it: COMP_WORDS split
# on blanks and on "=" and ":" (COMP_WORDBREAKS), COMP_CWORD the last word.
# With BASH_COMPLETION (the bash-completion package's bash_completion file),
# that is loaded first, as an interactive shell would.
[[ -n $3 ]] && source "$3"
source "$1" || exit 2
line=$2
COMP_LINE=$line COMP_POINT=${#line} COMP_TYPE=9 COMP_KEY=9
COMP_WORDS=()
for w in $line; do
  while [[ $w =~ ^([^=:]*)([=:])(.*)$ ]]; do
    [[ -n ${BASH_REMATCH[1]} ]] && COMP_WORDS+=("${BASH_REMATCH[1]}")
    COMP_WORDS+=("${BASH_REMATCH[2]}")
    w=${BASH_REMATCH[3]}
  done
  [[ -n $w ]] && COMP_WORDS+=("$w")
done
[[ $line == *" " || $line == *"=" || $line == *":" ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
complete -p smugoauth >/dev/null || exit 3
_smugoauth smugoauth "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
[[ ${#COMPREPLY[@]} -gt 0 ]] && printf '%s\n' "${COMPREPLY[@]}"
exit 0
