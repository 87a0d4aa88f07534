#!/usr/bin/env python3
# A post-processing batch job for an on-commit command (docs/configuration.md,
# "on_commit"). With this entry in the site configuration
#
#   on_commit = [{command = ["sbatch", "/path/to/esdm-hpc/slurm/postprocess.py"]}]
#
# the writer submits it after each commit. sbatch passes the submitter's
# environment on, so ESDM_CONTAINER, ESDM_EPOCH and ESDM_CONFIG name what was
# committed. The python of the first line must import esdm_hpc: start the model
# with the virtualenv's bin directory first on PATH, or change that line.
# Options (after the script's path in the command): --output URI, a template
# with {container} and {epoch} [{container}-post-e{epoch}]; --dataset PATH,
# repeatable [every floating-point dataset of two or more dimensions].
# (fmt: off keeps the formatter from turning "#SBATCH" into "# SBATCH", no directive.)
# fmt: off
#SBATCH --job-name=esdm-post
#SBATCH --ntasks=1
#SBATCH --time=00:10:00
#SBATCH --output=esdm-post-%j.out
# fmt: on
"""Derive the means over the last axis of a committed epoch's fields.

Reads epoch $ESDM_EPOCH of $ESDM_CONTAINER: that epoch, not HEAD, since the
model may have committed more by the time the job runs. Writes, for each
chosen dataset, its mean over the last axis (a zonal mean on a latitude-
longitude grid) to the same path of the derived container, with the source
and its epoch as attributes, and logs an event "derived" naming it in the
source container's event log.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import esdm_hpc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="{container}-post-e{epoch}")
    parser.add_argument("--dataset", action="append", help="a dataset path (repeatable)")
    args = parser.parse_args(argv)
    source, epoch = os.environ.get("ESDM_CONTAINER"), os.environ.get("ESDM_EPOCH", "")
    if source is None or not epoch.isdigit():
        print("postprocess.py: ESDM_CONTAINER and ESDM_EPOCH are not set: run me as an "
              "on-commit command", file=sys.stderr)  # fmt: skip
        return 2
    output = args.output.format(container=source, epoch=epoch)
    wanted = {"/" + path.strip("/") for path in args.dataset or ()}
    # the configuration is $ESDM_CONFIG's, as the writer's
    with esdm_hpc.open(source, epoch=int(epoch)) as raw:
        chosen = [
            d
            for d in raw.visit_datasets()
            if d.name in wanted or (not wanted and d.ndim >= 2 and d.dtype.kind == "f")
        ]
        missing = wanted - {d.name for d in chosen}
        if missing:
            print(f"postprocess.py: {source} epoch {epoch} has no dataset "
                  f"{', '.join(sorted(missing))}", file=sys.stderr)  # fmt: skip
            return 1
        means = {d.name: np.mean(d[...], axis=-1) for d in chosen}
        with esdm_hpc.open(output, "w", overwrite=True) as derived:
            derived.attrs["source"] = source
            derived.attrs["source_epoch"] = int(epoch)
            for path, mean in means.items():
                group, _, name = path.strip("/").rpartition("/")
                parent = derived.require_group(group) if group else derived
                dataset = parent.create_dataset(name, shape=mean.shape, dtype=mean.dtype)
                dataset[...] = mean
                dataset.attrs["operation"] = "mean over the last axis"
        raw.log_event("derived", container=output, datasets=sorted(means))
    print(f"{output}: {', '.join(sorted(means))} of {source} epoch {epoch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
