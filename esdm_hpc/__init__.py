"""esdm-hpc: the Earth System Data Middleware for HPC.

import esdm_hpc
with esdm_hpc.open("esdm://run1", "w", comm=MPI.COMM_WORLD) as c:
    tas = c.create_dataset("tas", shape=(365, 180, 360), dtype="f4")
    tas[day, :, :] = field      # independent write
    c.commit()                  # collective: publishes epoch 1
"""

from importlib.metadata import PackageNotFoundError, version

from esdm_hpc.container import Container, open
from esdm_hpc.dataset import Dataset
from esdm_hpc.empty import Empty
from esdm_hpc.epochs.events import Event, watch
from esdm_hpc.group import Group

try:
    __version__ = version("esdm-hpc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Container", "Dataset", "Empty", "Event", "Group", "__version__", "open", "watch"]
