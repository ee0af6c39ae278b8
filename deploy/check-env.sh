#!/bin/sh
# Run by `prefect deploy` (prefect.yaml, build step) before the deployment is written: the paths a night
# uses are read from the environment at deploy time and stored in the deployment, so an unset or relative
# one would store a deployment whose every night fails. Refuse it here instead.
status=0
for name in CROSSCHECK_HOME CROSSCHECK_LANDING CROSSCHECK_OUT CROSSCHECK_STATE; do
    eval "value=\${$name:-}"
    case "$value" in
        /*) ;;
        "") echo "deploy: $name is not set" >&2; status=1 ;;
        *) echo "deploy: $name must be an absolute path, not '$value'" >&2; status=1 ;;
    esac
done
[ "$status" -eq 0 ] || echo "deploy: load the environment first (deploy/crosscheck.env.example): set -a; . /etc/crosscheck/crosscheck.env; set +a" >&2
if [ "$status" -eq 0 ] && [ ! -f "$CROSSCHECK_HOME/flows/nightly.py" ]; then
    echo "deploy: CROSSCHECK_HOME=$CROSSCHECK_HOME is not a crosscheck checkout (no flows/nightly.py there)" >&2
    status=1
fi
if [ "$status" -eq 0 ] && [ ! -d "$CROSSCHECK_LANDING" ]; then
    echo "deploy: warning: the landing zone $CROSSCHECK_LANDING does not exist (yet); nights fail until it does" >&2
fi
[ "$status" -eq 0 ] && echo "deploy: checkout $CROSSCHECK_HOME; landing $CROSSCHECK_LANDING; out $CROSSCHECK_OUT; state $CROSSCHECK_STATE"
exit "$status"
