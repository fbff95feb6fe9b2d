# bash completion for monitoreo-privhelper                 -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/monitoreo-privhelper.
# privhelper/tests/docs.rs checks that it offers every option of
# `monitoreo-privhelper --help`.

_monitoreo_privhelper()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    case $prev in
        --policy | --socket)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --cgroup-root)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        --gateway-user)
            COMPREPLY=($(compgen -u -- "$cur"))
            return
            ;;
        --max-connections | --idle-timeout-s)
            return
            ;;
    esac
    COMPREPLY=($(compgen -W "--policy --socket --gateway-user --cgroup-root
        --max-connections --idle-timeout-s --check --help --version" -- "$cur"))
}
complete -F _monitoreo_privhelper monitoreo-privhelper
