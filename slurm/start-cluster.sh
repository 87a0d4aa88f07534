#!/usr/bin/env bash
# Start a private one-node Slurm cluster (munged + slurmctld + slurmd) on this
# machine, for running the esdm-hpc MPI tests and benchmarks through
# `srun --mpi=pmix`.
#
# Nothing is configured system-wide: the munge key, sockets, slurm.conf, state,
# spool, pid and log files all live in a private run directory, and the daemons
# listen on loopback on non-default ports. Running the script again while the
# cluster is up is a no-op (it only re-checks that the node is idle); if the
# generated slurm.conf changed, the cluster is restarted from scratch.
#
# Usage:  slurm/start-cluster.sh
#         source "${ESDM_SLURM_DIR:-/tmp/esdm-slurm}/env.sh"
#         srun --mpi=pmix -n 4 .venv/bin/python tests/programs/slurm_ranks.py
#         slurm/stop-cluster.sh
#
# Knobs (environment variables, defaults in brackets):
#   ESDM_SLURM_DIR        run directory                        [/tmp/esdm-slurm]
#   ESDM_SLURM_PORT       slurmctld port; slurmd uses PORT+1   [26817]
#   ESDM_SLURM_CPUS       task slots advertised by the node    [8]
#   ESDM_SLURM_MEMORY_MB  RealMemory advertised by the node    [4096]
#   ESDM_SLURM_PARTITION  name of the (default) partition      [debug]
#   ESDM_SLURM_TIMEOUT    seconds to wait for the node to be idle [60]
#   ESDM_SLURM_DEBUG      SlurmctldDebug/SlurmdDebug level     [info]
set -euo pipefail
# munged rejects group/world-writable log and pid directories; do not inherit
# a permissive umask (e.g. 002 in some CI images).
umask 022

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN_DIR=${ESDM_SLURM_DIR:-/tmp/esdm-slurm}
PORT=${ESDM_SLURM_PORT:-26817}
CPUS=${ESDM_SLURM_CPUS:-8}
MEMORY_MB=${ESDM_SLURM_MEMORY_MB:-4096}
PARTITION=${ESDM_SLURM_PARTITION:-debug}
TIMEOUT=${ESDM_SLURM_TIMEOUT:-60}
DEBUG=${ESDM_SLURM_DEBUG:-info}
HOST=$(hostname -s)

# Slurm daemons are looked up in sbin, which is not on every PATH (e.g. CI).
PATH=$PATH:/usr/sbin:/sbin

CONF=$RUN_DIR/slurm.conf
MUNGE_DIR=$RUN_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_KEY=$MUNGE_DIR/munge.key
LOG_DIR=$RUN_DIR/log
PID_DIR=$RUN_DIR/run
# stop-cluster.sh only deletes a directory that carries this marker, so that a
# mistyped ESDM_SLURM_DIR can never make it remove something else.
MARKER=$RUN_DIR/.esdm-slurm-run-dir

log() { printf 'start-cluster: %s\n' "$*" >&2; }

# Print the end of every log in the run dir, so that a failure in CI is
# diagnosable from the output alone.
dump_logs() {
    local f
    for f in "$LOG_DIR"/*.log; do
        [[ -f $f ]] || continue
        printf '\n----- last lines of %s -----\n' "$f" >&2
        tail -n 25 "$f" >&2 || true
    done
}

die() {
    log "ERROR: $*"
    dump_logs
    exit 1
}

# True if the pid file names a live process whose command is the expected
# daemon (guards against stale pid files whose pid was reused).
is_running() {
    local pidfile=$1 name=$2 pid comm
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]]
}

# Wait (bounded) until a daemon has written its pid file and is alive.
wait_running() {
    local pidfile=$1 name=$2 i
    for ((i = 0; i < 50; i++)); do
        is_running "$pidfile" "$name" && return 0
        sleep 0.2
    done
    die "$name did not start (no live process in $pidfile)"
}

check_prereqs() {
    local cmd missing=()
    for cmd in munged munge unmunge slurmctld slurmd sinfo scontrol srun; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if ((${#missing[@]})); then
        log "ERROR: missing programs: ${missing[*]}"
        log "install them with: apt-get install munge slurmctld slurmd slurm-client"
        exit 2
    fi
    # SlurmUser=root and slurmd must be able to start job steps; keep it simple.
    if ((EUID != 0)); then
        log "ERROR: must run as root (slurmd launches the job steps)"
        exit 2
    fi
    [[ $PORT =~ ^[0-9]+$ && $CPUS =~ ^[0-9]+$ && $MEMORY_MB =~ ^[0-9]+$ && $TIMEOUT =~ ^[0-9]+$ ]] ||
        die "ESDM_SLURM_PORT/CPUS/MEMORY_MB/TIMEOUT must be integers"
}

# Render slurm.conf.in to stdout. '|' is the sed delimiter, so reject values
# containing it (or newlines) rather than producing a broken file.
render_conf() {
    local v
    for v in "$RUN_DIR" "$HOST" "$PARTITION" "$DEBUG"; do
        [[ $v != *'|'* && $v != *$'\n'* ]] || die "invalid character in '$v'"
    done
    sed -e "s|@RUN_DIR@|$RUN_DIR|g" \
        -e "s|@HOST@|$HOST|g" \
        -e "s|@CTLD_PORT@|$PORT|g" \
        -e "s|@SLURMD_PORT@|$((PORT + 1))|g" \
        -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" \
        -e "s|@CPUS@|$CPUS|g" \
        -e "s|@MEMORY_MB@|$MEMORY_MB|g" \
        -e "s|@PARTITION@|$PARTITION|g" \
        -e "s|@DEBUG@|$DEBUG|g" \
        "$SCRIPT_DIR/slurm.conf.in"
}

any_running() {
    is_running "$PID_DIR/munged.pid" munged ||
        is_running "$PID_DIR/slurmctld.pid" slurmctld ||
        is_running "$PID_DIR/slurmd.pid" slurmd
}

prepare_run_dir() {
    local new_conf
    new_conf=$(render_conf)
    # A running cluster with a different configuration (other port, CPUs, ...)
    # is restarted from scratch rather than reconfigured in place: saved state
    # (node names, job ids) may not match the new configuration.
    if [[ -f $CONF ]] && [[ $(<"$CONF") != "$new_conf" ]] && any_running; then
        log "configuration changed; restarting the cluster"
        "$SCRIPT_DIR/stop-cluster.sh"
    fi
    # slurmd wants its spool dir (which holds its domain socket) to exist.
    mkdir -p "$RUN_DIR" "$RUN_DIR/state" "$RUN_DIR/spool/slurmd-$HOST" "$LOG_DIR" "$PID_DIR" \
        "$MUNGE_DIR" "$RUN_DIR/tmp"
    # TmpFS: like /tmp, job steps of any user create their scratch dirs there.
    chmod 1777 "$RUN_DIR/tmp"
    touch "$MARKER"
    # munged insists that the socket directory is searchable by all (clients
    # of any user must reach the socket) and writable by none but root; the
    # key itself is protected by its own 0400 mode.
    chmod 0755 "$RUN_DIR" "$MUNGE_DIR"
    if [[ ! -f $CONF ]] || [[ $(<"$CONF") != "$new_conf" ]]; then
        printf '%s\n' "$new_conf" >"$CONF.tmp"
        mv "$CONF.tmp" "$CONF"
    fi
    # An empty SPANK plugin stack of our own, instead of /etc/slurm/plugstack.conf.
    [[ -f $RUN_DIR/plugstack.conf ]] ||
        echo '# no SPANK plugins for the esdm-hpc test cluster' >"$RUN_DIR/plugstack.conf"
    write_env
}

# env.sh: what a client shell needs. SLURM_CONF points srun/sbatch/sinfo at our
# slurm.conf, which in turn names our munge socket (AuthInfo=socket=...).
write_env() {
    cat >"$RUN_DIR/env.sh.tmp" <<EOF
# Generated by slurm/start-cluster.sh; source it before srun/sbatch/sinfo.
export ESDM_SLURM_DIR='$RUN_DIR'
export SLURM_CONF='$CONF'
# The cluster runs everything as root; OpenMPI's mpirun refuses that without
# these (srun --mpi=pmix direct launch does not need them; harmless there).
# srun propagates the environment to the ranks (--export=ALL by default).
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF
    mv "$RUN_DIR/env.sh.tmp" "$RUN_DIR/env.sh"
}

start_munged() {
    if is_running "$PID_DIR/munged.pid" munged; then
        log "munged already running (pid $(<"$PID_DIR/munged.pid"))"
    else
        if [[ ! -s $MUNGE_KEY ]]; then
            # A fresh random key per run dir: the cluster never talks to
            # another host, so it needs no shared /etc/munge/munge.key.
            mungekey --create --keyfile="$MUNGE_KEY" 2>>"$LOG_DIR/munged.log" ||
                dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
            chmod 0400 "$MUNGE_KEY"
        fi
        rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
        # Daemons get their stdio detached from ours, or a caller capturing
        # our output (pytest, CI) would wait for them forever.
        munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" \
            --pid-file="$PID_DIR/munged.pid" --log-file="$LOG_DIR/munged.log" \
            --seed-file="$MUNGE_DIR/munged.seed" </dev/null >>"$LOG_DIR/munged.log" 2>&1 ||
            die "munged failed to start"
        wait_running "$PID_DIR/munged.pid" munged
    fi
    # Round-trip a credential to prove the socket and key work.
    local i
    for ((i = 0; i < 25; i++)); do
        if munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "munge credential round trip through $MUNGE_SOCKET failed"
}

start_slurmctld() {
    if is_running "$PID_DIR/slurmctld.pid" slurmctld; then
        log "slurmctld already running (pid $(<"$PID_DIR/slurmctld.pid"))"
        return
    fi
    slurmctld -f "$CONF" </dev/null >>"$LOG_DIR/slurmctld.log" 2>&1 ||
        die "slurmctld failed to start"
    wait_running "$PID_DIR/slurmctld.pid" slurmctld
    # The pid file appears before slurmctld has bound its port (and it may
    # still die then, e.g. port in use): wait until it answers a ping.
    local deadline=$((SECONDS + TIMEOUT))
    until SLURM_CONF=$CONF timeout 3 scontrol ping 2>/dev/null | grep -q 'is UP'; do
        is_running "$PID_DIR/slurmctld.pid" slurmctld || die "slurmctld exited during startup"
        ((SECONDS < deadline)) || die "slurmctld does not answer after ${TIMEOUT}s"
        sleep 0.2
    done
}

start_slurmd() {
    if is_running "$PID_DIR/slurmd.pid" slurmd; then
        log "slurmd already running (pid $(<"$PID_DIR/slurmd.pid"))"
        return
    fi
    # -N: the node name in slurm.conf is `hostname -s`, which need not be what
    # slurmd would infer from the full host name.
    slurmd -f "$CONF" -N "$HOST" </dev/null >>"$LOG_DIR/slurmd.log" 2>&1 ||
        die "slurmd failed to start"
    wait_running "$PID_DIR/slurmd.pid" slurmd
}

# Bounded wait until sinfo reports the node usable. A node left down/drained
# (e.g. by a slurmd restart) is resumed once; ReturnToService=2 normally does
# that by itself.
wait_idle() {
    local deadline=$((SECONDS + TIMEOUT)) state="" resumed=0
    while ((SECONDS < deadline)); do
        is_running "$PID_DIR/slurmctld.pid" slurmctld || die "slurmctld exited"
        is_running "$PID_DIR/slurmd.pid" slurmd || die "slurmd exited"
        state=$(SLURM_CONF=$CONF timeout 15 sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n 1) || state=""
        case $state in
            idle | mixed | allocated | completing) return 0 ;;
            down* | drain* | fail*)
                if ((!resumed)); then
                    resumed=1
                    SLURM_CONF=$CONF timeout 15 scontrol update NodeName="$HOST" State=RESUME \
                        >/dev/null 2>&1 || true
                fi
                ;;
        esac
        sleep 0.5
    done
    die "node $HOST not idle after ${TIMEOUT}s (last sinfo state: '${state:-none}')"
}

main() {
    local t0=$SECONDS
    check_prereqs
    [[ -f $SCRIPT_DIR/slurm.conf.in ]] || die "template $SCRIPT_DIR/slurm.conf.in not found"
    prepare_run_dir
    start_munged
    start_slurmctld
    start_slurmd
    wait_idle
    cat <<EOF
Slurm test cluster is up (node $HOST, $CPUS slots, partition $PARTITION, $((SECONDS - t0))s).
  run dir:  $RUN_DIR   (logs in $LOG_DIR)
  use:      source $RUN_DIR/env.sh
            srun --mpi=pmix -n 4 python tests/programs/slurm_ranks.py
            sbatch --wait slurm/bench.sbatch
  stop:     $SCRIPT_DIR/stop-cluster.sh
EOF
}

main "$@"
