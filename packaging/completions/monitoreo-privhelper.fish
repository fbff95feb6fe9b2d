# fish completion for monitoreo-privhelper.
# Installed as /usr/share/fish/vendor_completions.d/monitoreo-privhelper.fish.
# privhelper/tests/docs.rs checks that it offers every option of
# `monitoreo-privhelper --help`.

set -l ph monitoreo-privhelper
complete -c $ph -f
complete -c $ph -l policy -r -F -d 'Policy file'
complete -c $ph -l socket -r -F -d 'Socket to create'
complete -c $ph -l gateway-user -x -a '(__fish_complete_users)' -d 'The one non-root user served'
complete -c $ph -l cgroup-root -x -a '(__fish_complete_directories)' -d 'cgroup v2 directory for job cgroups'
complete -c $ph -l max-connections -x -d 'Connections served at once'
complete -c $ph -l idle-timeout-s -x -d 'Close a connection idle this long'
complete -c $ph -l check -d 'Check the policy and exit'
complete -c $ph -s h -l help -d 'Print the help'
complete -c $ph -s V -l version -d 'Print the version'
