"""The type spellings the C shim and the core agree on.

A type crosses the bridge as a plain Python value the C side builds and
reads with the C API (vol_plugin/src/types.c):

- a ``str`` for the types HDF5 and numpy share: numpy's ``dtype.str``
  (``<i4``, ``>u2``, ``<f8``, ``|S16``), or ``vlen-str`` for HDF5's
  variable-length UTF-8 strings, which the core keeps as numpy unicode;
- a ``dict`` with a ``class`` for HDF5's composite types, holding what HDF5
  needs to rebuild the type exactly:

  ``{"class": "compound", "size": 16, "members": [[name, offset, spelling], ...]}``
  ``{"class": "array", "base": spelling, "shape": [2, 3]}`` (compound members only)
  ``{"class": "enum", "base": "<i2", "members": [[name, value], ...]}``
  ``{"class": "opaque", "size": 8, "tag": "..."}``
  ``{"class": "bitfield", "base": "<u2"}``
  ``{"class": "string", "size": 8, "pad": "nullterm", "cset": "utf-8"}`` (fixed-length
  strings other than numpy's NUL-padded ASCII ``|S8``)
  ``{"class": "vlen-str", "cset": "ascii"}`` (variable-length ASCII strings; ``vlen-str``
  is UTF-8; the core's `STRING` carrying ``cset``)
  ``{"class": "vlen", "base": spelling}`` (as h5py's `vlen_dtype`)
  ``{"class": "reference"}`` (HDF5's ``H5T_STD_REF`` to an object; attributes only)
  ``{"class": "reference", "format": "address"}`` (``H5T_STD_REF_OBJ``, the 1.10
  format: the object's token as an haddr_t, which names it for good)

numpy has no enum, opaque tag, bitfield or string padding; the core keeps
those as the underlying integer, void or bytes dtype carrying dtype
metadata (``enum`` as `h5py.enum_dtype` spells it, `OPAQUE_TAG`,
`BITFIELD`, `STRPAD` and `CSET`), which `esdm_hpc.encoding` stores with
the dtype. An HDF5 array type as a whole element is a compound of that one
member (`ARRAY_ELEMENT`), since numpy turns subarray elements into extra
dimensions. A compound's members carry no metadata themselves: numpy's array
interface (``as_strided``, which the core's reader uses) cannot rebuild
member dtypes with metadata, so the compound's metadata holds its members'
under `FIELDS`, by member name. A variable-length sequence is an object
array of arrays (`VLEN`, h5py's spelling), a reference the `REFERENCE_SIZE`
byte digest `esdm_hpc.vol.values` makes of the object's path, a reference of
the 1.10 format its 8 bytes as they are. Anything else is refused on both
sides with a message naming the type.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esdm_hpc.strings import STRING, is_string

VLEN_STR = "vlen-str"
VLEN_ASCII = {"class": "vlen-str", "cset": "ascii"}  # variable-length ASCII strings
OPAQUE_TAG = "opaque_tag"
BITFIELD = "bitfield"
STRPAD = "strpad"
CSET = "cset"
FIELDS = "fields"
VLEN = "vlen"
REFERENCE = "reference"
REFERENCE_SIZE = 16
ADDRESS = "address"  # a reference of the 1.10 format (H5T_STD_REF_OBJ)
ARRAY_ELEMENT = "array_element"  # an HDF5 array type as a whole element: a compound of
ARRAY_MEMBER = "value"  # this one member
ADDRESS_SIZE = 8  # sizeof(haddr_t)

Spelling = str | dict[str, Any]
Metadata = dict[str, Any]

# IEEE binary16/32/64, and C's long double where it is wider (x87's in 16 bytes)
_FLOAT_SIZES = (2, 4, 8) + (
    (np.dtype(np.longdouble).itemsize,) * (np.finfo(np.longdouble).bits > 64)
)


def to_numpy(spelling: Spelling) -> np.dtype:
    """The numpy dtype the core stores values of ``spelling`` as."""
    dtype, metadata = _to_numpy(spelling)
    if dtype.subdtype is not None:
        # numpy turns the elements of an array of a subarray dtype into extra
        # dimensions of it: the core keeps the type as the one member of a compound
        fields = {FIELDS: {ARRAY_MEMBER: metadata}} if metadata else {}
        return np.dtype([(ARRAY_MEMBER, dtype)], metadata={ARRAY_ELEMENT: True, **fields})
    if dtype.names is not None and dtype.hasobject:
        raise TypeError("esdm VOL: variable-length members of compound types are not supported yet")
    return _with(dtype, metadata)


def member(dtype: np.dtype, name: str) -> np.dtype:
    """The member ``name`` of a compound dtype, with the metadata its compound keeps for it."""
    own = dtype.fields[name][0]
    return _with(
        own, {**(own.metadata or {}), **(dtype.metadata or {}).get(FIELDS, {}).get(name, {})}
    )


def is_vlen(dtype: np.dtype) -> bool:
    return dtype.kind == "O" and VLEN in (dtype.metadata or {})


def crosses_as_trees(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` cross the bridge as trees (`esdm_hpc.vol.values`):
    those holding variable-length sequences or references kept as digests."""
    if dtype.names is not None:
        return any(crosses_as_trees(member(dtype, name)) for name in dtype.names)
    if dtype.subdtype is not None:
        return crosses_as_trees(dtype.subdtype[0])
    return is_vlen(dtype) or is_reference(dtype)


def is_reference(dtype: np.dtype) -> bool:
    """Whether ``dtype`` holds references the core keeps as digests (not the 1.10
    format's addresses, which are plain bytes to it)."""
    return (dtype.metadata or {}).get(REFERENCE) == "object"


def _with(dtype: np.dtype, metadata: Metadata) -> np.dtype:
    return np.dtype(dtype, metadata=metadata) if metadata else dtype


def spelling(dtype: np.dtype) -> Spelling:
    """How the C side is told about values stored with ``dtype``."""
    if dtype.kind == "U" or is_string(dtype):
        ascii = (dtype.metadata or {}).get(CSET) == "ascii"
        return VLEN_ASCII if ascii else VLEN_STR
    return _spelling(dtype, dict(dtype.metadata or {}))


def string_dtype(spelling: Spelling) -> np.dtype | None:
    """The core's dtype of variable-length strings ``spelling`` spells (`STRING`, with
    the character set where it is ASCII); None for other types."""
    if spelling == VLEN_STR:
        return STRING
    return (
        np.dtype("O", metadata={**STRING.metadata, CSET: "ascii"})
        if spelling == VLEN_ASCII
        else None
    )


def _to_numpy(spelling: Spelling) -> tuple[np.dtype, Metadata]:
    """A dtype without metadata, and the metadata that makes it ``spelling``."""
    if spelling == VLEN_STR:
        return np.dtype("U"), {}
    if isinstance(spelling, str):
        return _atomic(spelling), {}
    match spelling.get("class"):
        case "compound":
            names, offsets, formats, fields = [], [], [], {}
            for name, offset, member in spelling["members"]:
                dtype, metadata = _to_numpy(member)
                names.append(name)
                offsets.append(offset)
                formats.append(dtype)
                if metadata:
                    fields[name] = metadata
            layout = {"names": names, "formats": formats, "offsets": offsets}
            return np.dtype({**layout, "itemsize": spelling["size"]}), {
                FIELDS: fields
            } if fields else {}
        case "array":
            base, metadata = _to_numpy(spelling["base"])
            return np.dtype((base, tuple(spelling["shape"]))), metadata
        case "enum":
            members = {name: int(value) for name, value in spelling["members"]}
            return _integer(spelling["base"]), {"enum": members}
        case "opaque":
            return np.dtype(f"V{spelling['size']}"), {OPAQUE_TAG: spelling["tag"]}
        case "bitfield":
            return _integer(spelling["base"]), {BITFIELD: True}
        case "string":
            return np.dtype(f"S{spelling['size']}"), {
                STRPAD: spelling["pad"],
                CSET: spelling["cset"],
            }
        case "vlen":
            base, metadata = _to_numpy(spelling["base"])
            return np.dtype("O"), {VLEN: _with(base, metadata)}
        case "reference" if spelling.get("format") == ADDRESS:
            return np.dtype(f"V{ADDRESS_SIZE}"), {REFERENCE: ADDRESS}
        case "reference":
            return np.dtype(f"V{REFERENCE_SIZE}"), {REFERENCE: "object"}
    raise TypeError(f"esdm VOL: unknown type spelling {spelling!r}")


def _spelling(dtype: np.dtype, metadata: Metadata) -> Spelling:
    """The spelling of ``dtype`` with ``metadata`` (its own, or its compound's for it)."""
    if metadata.get(ARRAY_ELEMENT):
        return spelling(member(_with(dtype, metadata), ARRAY_MEMBER))
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return {"class": "array", "base": _spelling(base, metadata), "shape": list(shape)}
    if dtype.names is not None:
        with_metadata = _with(dtype, metadata)
        members = [
            [name, dtype.fields[name][1], spelling(member(with_metadata, name))]
            for name in dtype.names
        ]
        return {"class": "compound", "size": dtype.itemsize, "members": members}
    if VLEN in metadata:
        return {"class": "vlen", "base": spelling(np.dtype(metadata[VLEN]))}
    if metadata.get(REFERENCE) == ADDRESS:
        return {"class": "reference", "format": ADDRESS}
    if REFERENCE in metadata:
        return {"class": "reference"}
    if "enum" in metadata:
        members = [[name, int(value)] for name, value in metadata["enum"].items()]
        return {"class": "enum", "base": _plain(dtype), "members": members}
    if metadata.get(BITFIELD):
        return {"class": "bitfield", "base": _plain(dtype)}
    if dtype.kind == "S" and (STRPAD in metadata or CSET in metadata):
        pad, cset = metadata.get(STRPAD, "nullpad"), metadata.get(CSET, "ascii")
        return {"class": "string", "size": dtype.itemsize, "pad": pad, "cset": cset}
    if dtype.kind == "V":
        return {"class": "opaque", "size": dtype.itemsize, "tag": metadata.get(OPAQUE_TAG, "")}
    return _plain(dtype)


def _atomic(spelling: str) -> np.dtype:
    try:
        dtype = np.dtype(spelling)
    except TypeError:
        raise TypeError(f"esdm VOL: unknown type spelling {spelling!r}") from None
    return _checked(dtype)


def _integer(spelling: str) -> np.dtype:
    dtype = _atomic(spelling)
    if dtype.kind not in "iu":
        raise TypeError(f"esdm VOL: {spelling} is not an integer type")
    return dtype


def _plain(dtype: np.dtype) -> str:
    """The spelling of an atomic dtype, without its metadata."""
    return _checked(np.dtype(dtype.str)).str


def _checked(dtype: np.dtype) -> np.dtype:
    if (
        dtype.kind in "iu"
        or (dtype.kind == "f" and dtype.itemsize in _FLOAT_SIZES)
        or (dtype.kind == "S" and dtype.itemsize > 0)
    ):
        return dtype
    raise TypeError(f"esdm VOL: numpy type {dtype} has no HDF5 counterpart in the connector yet")
