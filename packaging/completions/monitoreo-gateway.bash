# bash completion for monitoreo-gateway                    -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/monitoreo-gateway.
# api-gateway/tests/docs.rs checks that it offers every command and option
# of `monitoreo-gateway --help`.

_monitoreo_gateway()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    case $prev in
        --config)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --scopes)
            # A comma-separated list: complete the part after the last comma.
            local done=
            [[ $cur == *,* ]] && done=${cur%,*},
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -P "$done" -W "read signal renice exec metrics" -- "${cur##*,}"))
            return
            ;;
        --expires)
            COMPREPLY=($(compgen -W "1h 12h 1d 7d 30d 90d" -- "$cur"))
            return
            ;;
        --cert-subject)
            COMPREPLY=($(compgen -W "CN=" -- "$cur"))
            return
            ;;
    esac

    # The command words typed so far, skipping options and their values.
    local i cmd= sub=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --config | --scopes | --expires | --cert-subject) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=${COMP_WORDS[i]}
                elif [[ -z $sub ]]; then
                    sub=${COMP_WORDS[i]}
                fi
                ;;
        esac
    done

    local words
    case $cmd/$sub in
        /) words="serve keys --help --version" ;;
        serve/*) words="--config --help" ;;
        keys/) words="add list revoke --help" ;;
        keys/add) words="--scopes --expires --cert-subject --config --help" ;;
        keys/list) words="--json --config --help" ;;
        keys/revoke) words="--config --help" ;;
        *) words= ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _monitoreo_gateway monitoreo-gateway
