# esdm-hpc: `make demo` and `make test` set everything up first (`make setup`).
# Slow builds (parallel HDF5 and netCDF-C, MPI wheels) are cached under
# ~/.cache/esdm-hpc.

VENV   := .venv
PY     := $(VENV)/bin/python
HDF5   := .deps/hdf5
NETCDF := .deps/netcdf
KERNEL_SOURCES := $(wildcard csrc/*.c csrc/*.h esdm_hpc/kernels/*.pyx setup.py)

# OpenMPI refuses root and more ranks than cores unless told; tests and demo
# run 2-8 ranks on this 2-core machine as root.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/$(HDF5)/bin:$(CURDIR)/$(NETCDF)/bin:$(PATH)

.PHONY: setup system deps hdf5 netcdf python-base python vol demo test lint bench clean

setup: build/kernels.stamp

system:
	@deps/apt.sh deps/apt-packages.txt

# The slow builds side by side: HDF5 (ninja, all cores) then netCDF-C on top
# of it, next to mpi4py (one long compile). -Oline keeps their lines whole
# and shows them as they come.
deps: system
	@$(MAKE) --no-print-directory -j2 -Oline netcdf python-base

hdf5:
	@deps/build-hdf5.sh $(HDF5)

netcdf: hdf5
	@deps/build-netcdf.sh $(NETCDF) $(HDF5)

python-base:
	@deps/python-env.sh base $(VENV)

python: deps
	@deps/python-env.sh hdf5 $(VENV) $(HDF5)

# Order-only: the environment must exist, but its (phony) check alone does
# not force a recompile.
build/kernels.stamp: $(KERNEL_SOURCES) | python build
	@echo "== compiling kernels"
	@$(PY) setup.py -q build_ext --inplace >build/kernels.log 2>&1 \
		|| { cat build/kernels.log; exit 1; }
	@touch $@

build:
	@mkdir -p build

# The HDF5 VOL connector (a C shim over the Python core); absolute paths since
# the sub-make runs in vol_plugin/.
vol: setup
	@$(MAKE) -s -C vol_plugin HDF5=$(CURDIR)/$(HDF5) PYTHON=$(CURDIR)/$(PY)

demo: setup
	mpirun -n 4 $(PY) -m esdm_hpc.demo

# The storage tiers: a burst buffer on /dev/shm that drains to disk and to S3
# (SeaweedFS, started on loopback and stopped again); docs/architecture.md §5.
demo-tiers: setup
	mpirun -n 2 $(PY) -m esdm_hpc.tiers_demo

test: setup vol
	$(PY) -m pytest tests

lint: setup
	$(VENV)/bin/ruff check esdm_hpc tests benchmarks
	$(VENV)/bin/ruff format --check esdm_hpc tests benchmarks

bench: setup
	$(PY) benchmarks/kernels.py

clean:
	rm -rf build esdm_hpc/kernels/*.so esdm_hpc/kernels/_*.c
	$(MAKE) -C vol_plugin clean
