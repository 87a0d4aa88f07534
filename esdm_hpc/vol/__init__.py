"""The Python half of the HDF5 VOL connector "esdm" (docs/architecture.md §1.3, §6.2).

The C shim in ``vol_plugin/`` turns HDF5 calls into calls of `bridge`; this
package turns those into operations of the core (`esdm_hpc.open`, groups,
datasets, attributes). Nothing here imports HDF5: the C side owns every
HDF5 object, the Python side every ESDM object.

- `names`: HDF5 file names -> container URIs and site configurations
- `dtypes`: the type spellings both halves agree on
- `values`: values HDF5 keeps outside fixed-size elements (sequences, references) as trees
- `objects`: the handles the C side holds for files, groups, datasets, attributes
- `bridge`: the functions the C side calls
"""
