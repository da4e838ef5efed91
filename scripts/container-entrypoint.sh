#!/bin/sh
# The container's main process: `zapvisor serve` (supervisord in the foreground; its
# health monitor starts the sessions meant to run, a few at a time). On `docker stop`
# (SIGTERM) every runner is stopped at once with `zapvisor shutdown`, then supervisord:
# supervisord's own shutdown stops one program per second, too slow for a stop timeout.
# Any arguments run that zapvisor command instead (`docker run IMAGE list`).
set -u
if [ "$#" -gt 0 ]; then
    exec zapvisor "$@"
fi
zapvisor serve &
child=$!
stopping=0
stopped=1
stop() {
    if [ "$stopping" = 0 ]; then
        stopping=1
        if zapvisor shutdown >&2; then
            stopped=0
        else
            kill -TERM "$child" 2>/dev/null
        fi
    fi
}
trap stop TERM INT
status=0
# `wait` returns early when a trapped signal arrives: wait until serve itself ends
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done
if [ "$stopping" = 1 ]; then
    exit "$stopped"
fi
exit "$status"
