# Sourced by the batch templates (bench.sbatch, burst-buffer.sbatch) after they
# set ROOT (the repository root): the project's virtualenv and source tree for
# every step of the job. ESDM_VENV names another virtualenv.
VENV=${ESDM_VENV:-$ROOT/.venv}
PYTHON=$VENV/bin/python
[[ -x $PYTHON ]] || {
    echo "$(basename "$0"): no python in virtualenv $VENV (set ESDM_VENV)" >&2
    exit 2
}
# The project is used from the source tree, not installed.
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
# OpenMPI refuses to run as root without these; the test cluster runs as root.
if ((EUID == 0)); then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
