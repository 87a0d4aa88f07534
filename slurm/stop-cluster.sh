#!/usr/bin/env bash
# Stop the private Slurm cluster started by slurm/start-cluster.sh and remove
# its run directory. Safe to call when nothing runs (or twice).
#
# Usage:  slurm/stop-cluster.sh [--keep-logs]
#   --keep-logs   keep $ESDM_SLURM_DIR/log (everything else is removed)
#
# Only the processes named by the pid files in the run directory are stopped
# (after checking that the pid still belongs to that daemon), never anything
# found by name, so a system-wide Slurm or munge is left alone.
set -euo pipefail

RUN_DIR=${ESDM_SLURM_DIR:-/tmp/esdm-slurm}
PID_DIR=$RUN_DIR/run
CONF=$RUN_DIR/slurm.conf
MARKER=$RUN_DIR/.esdm-slurm-run-dir
KEEP_LOGS=0

for arg in "$@"; do
    case $arg in
        --keep-logs) KEEP_LOGS=1 ;;
        -h | --help)
            sed -n '2,10p' "$0"
            exit 0
            ;;
        *)
            echo "stop-cluster: unknown argument '$arg'" >&2
            exit 2
            ;;
    esac
done

PATH=$PATH:/usr/sbin:/sbin

log() { printf 'stop-cluster: %s\n' "$*" >&2; }

# Print the pid if the pid file names a live process running the expected
# daemon; a stale pid file (pid reused by something else) yields nothing.
live_pid() {
    local pidfile=$1 name=$2 pid comm
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    echo "$pid"
}

# SIGTERM to all of them at once (each takes 1-2 s to exit; nothing in their
# shutdown needs the others), wait up to 15 s for a clean exit (slurmctld saves
# its state), then SIGKILL so that the script never hangs on a wedged daemon.
stop_daemons() {
    local name pid i
    local -a pids=()
    for name in "$@"; do
        pid=$(live_pid "$PID_DIR/$name.pid" "$name") || continue
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for ((i = 0; i < 150; i++)); do
        mapfile -t pids < <(still_alive "${pids[@]}")
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    log "still running after 15s, sending SIGKILL: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        mapfile -t pids < <(still_alive "${pids[@]}")
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    log "WARNING: still alive: ${pids[*]}"
}

# Print those of the given pids that are still alive, one per line.
still_alive() {
    local pid
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
    done
    return 0
}

# Cancel the jobs first: slurmstepd (and the job's processes) outlive slurmd,
# so stopping the daemons alone could leave ranks running.
cancel_jobs() {
    live_pid "$PID_DIR/slurmctld.pid" slurmctld >/dev/null || return 0
    live_pid "$PID_DIR/slurmd.pid" slurmd >/dev/null || return 0
    local jobs i
    jobs=$(SLURM_CONF=$CONF timeout 15 squeue -h -o '%A' 2>/dev/null) || return 0
    [[ -n $jobs ]] || return 0
    log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one job id per word
    SLURM_CONF=$CONF timeout 15 scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        jobs=$(SLURM_CONF=$CONF timeout 15 squeue -h -o '%A' 2>/dev/null) || return 0
        [[ -n $jobs ]] || return 0
        sleep 0.25
    done
    log "WARNING: jobs still listed after 10s: $(echo "$jobs" | tr '\n' ' ')"
}

if [[ -d $RUN_DIR ]]; then
    cancel_jobs
    stop_daemons slurmd slurmctld munged
fi

# Remove the run directory, but only one that start-cluster.sh created.
if [[ -f $MARKER ]]; then
    if ((KEEP_LOGS)); then
        find "$RUN_DIR" -mindepth 1 -maxdepth 1 ! -name log ! -name "${MARKER##*/}" -exec rm -rf {} +
        log "stopped; removed $RUN_DIR except $RUN_DIR/log"
    else
        rm -rf "$RUN_DIR"
        log "stopped; removed $RUN_DIR"
    fi
elif [[ -e $RUN_DIR ]]; then
    log "not removing $RUN_DIR: it was not created by start-cluster.sh"
else
    log "nothing to stop ($RUN_DIR does not exist)"
fi
