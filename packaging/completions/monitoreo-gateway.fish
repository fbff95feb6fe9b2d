# fish completion for monitoreo-gateway.
# Installed as /usr/share/fish/vendor_completions.d/monitoreo-gateway.fish.
# api-gateway/tests/docs.rs checks that it offers every command and option
# of `monitoreo-gateway --help`.

set -l gw monitoreo-gateway
complete -c $gw -f
complete -c $gw -n "not __fish_seen_subcommand_from serve keys" -a serve -d 'Serve the HTTP API'
complete -c $gw -n "not __fish_seen_subcommand_from serve keys" -a keys -d 'Manage API keys'
complete -c $gw -n "__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from add list revoke" -a add -d 'Create a key, print its token once'
complete -c $gw -n "__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from add list revoke" -a list -d 'List the keys'
complete -c $gw -n "__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from add list revoke" -a revoke -d 'Revoke a key'
complete -c $gw -l config -r -F -d 'Gateway configuration (TOML)'
complete -c $gw -n "__fish_seen_subcommand_from add" -l scopes -x -a '(__fish_complete_list , "printf %s\n read signal renice exec metrics")' -d 'Scopes of the key'
complete -c $gw -n "__fish_seen_subcommand_from add" -l expires -x -a '1h 12h 1d 7d 30d 90d' -d 'Expire after (s, m, h, d)'
complete -c $gw -n "__fish_seen_subcommand_from add" -l cert-subject -x -d 'Authenticate by a client certificate with this subject'
complete -c $gw -n "__fish_seen_subcommand_from list" -l json -d 'Print a JSON array'
complete -c $gw -s h -l help -d 'Print the help'
complete -c $gw -s V -l version -d 'Print the version'
