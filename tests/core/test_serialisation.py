"""The serialisation registry: every layout round-trips, the registry refuses what
no writer writes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

from esdm_hpc import serialisation
from esdm_hpc.epochs.manifest import decode_fragment
from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.fragment import Fragment
from esdm_hpc.strings import STRING

SETTINGS = settings(max_examples=60, deadline=None)

FIXED = nps.scalar_dtypes() | nps.array_dtypes(nps.scalar_dtypes(), max_size=3)
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@st.composite
def pieces(draw: st.DrawFn, layout: serialisation.Serialisation) -> np.ndarray:
    """A piece of a dataset ``layout`` lays out, possibly a strided view (as the
    writer's cuts of a larger write are)."""
    ndim = draw(st.integers(0, 4).filter(layout.lays_out))
    shape = draw(nps.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=6))
    if layout.name == "strings":
        values = draw(st.lists(TEXT, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        whole = np.array(values, dtype=STRING).reshape(shape)
    else:
        whole = draw(nps.arrays(draw(FIXED), shape))
    steps = tuple(draw(st.integers(1, 2)) for _ in shape)
    return whole[(..., *(slice(None, None, s) for s in steps))]  # 0-d: still an array


def stored(payload: np.ndarray) -> np.ndarray:
    """The payload as a reader gets it back: its bytes, in a fresh buffer."""
    return np.frombuffer(bytearray(payload.tobytes()), dtype=np.uint8)


@pytest.mark.parametrize("name", serialisation.NAMES)
@SETTINGS
@given(data=st.data())
def test_every_serialisation_round_trips_the_pieces_it_lays_out(name: str, data) -> None:
    layout = serialisation.get(name)
    piece = data.draw(pieces(layout))
    payload = layout.encode(piece)
    assert payload.ndim == 1 and payload.flags.c_contiguous
    decoded = layout.decode(stored(payload), piece.shape, piece.dtype)
    assert decoded.shape == piece.shape
    if piece.dtype == STRING:
        assert decoded.tolist() == piece.tolist()
    else:
        assert decoded.dtype == piece.dtype and decoded.tobytes() == piece.tobytes()
    if layout.blocks_addressable:  # the reader reads its parts as byte ranges of C order
        assert payload.tobytes() == np.ascontiguousarray(piece).tobytes()


HINTS = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"serialisation": st.sampled_from(["C", "hilbert", "strings", "zstd", "", "Hilbert"])}
    ),
)


@SETTINGS
@given(string=st.booleans(), hints=HINTS, ndim=st.integers(0, 5))
def test_a_writer_uses_the_hinted_layout_where_it_lays_out_the_piece(
    string: bool, hints: dict, ndim: int
) -> None:
    dtype = STRING if string else np.dtype("f4")
    chosen = serialisation.for_dataset(dtype, hints, ndim)
    if string:
        expected = "strings"
    elif hints.get("serialisation") == "hilbert" and ndim in (2, 3):
        expected = "hilbert"
    else:  # no hint, a name no writer takes from a hint, or Hilbert order of 1-D or 4-D
        expected = "C"
    assert chosen.name == expected
    assert chosen is serialisation.get(expected)


def test_the_registry_names_every_layout_fragments_are_stored_in() -> None:
    assert serialisation.NAMES == ("C", "hilbert", "strings")
    assert serialisation.HINTED == ("C", "hilbert")
    assert [serialisation.get(n).blocks_addressable for n in serialisation.NAMES] == [
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("name", ["zstd", "", "c", ["C"], None])
def test_a_name_no_writer_writes_is_refused_by_name(name: object) -> None:
    with pytest.raises(ValueError, match=r"unknown serialisation .* \(known: 'C', 'hilbert'"):
        serialisation.get(name)  # type: ignore[arg-type]


def test_a_stored_record_naming_an_unknown_serialisation_is_malformed() -> None:
    record = Fragment(
        id="f0", dataset="/x", epoch=1, rank=0, seq=0, offset=(0,), count=(5,),
        serialisation="C", codec="raw", nbytes=40, block_size=8, checksums="", replicas=(),
    ).to_json()  # fmt: skip
    assert decode_fragment(record, "epoch 1").serialisation == "C"
    record["serialisation"] = "zstd"
    with pytest.raises(
        CorruptMetadataError, match=r"epoch 1: malformed fragment record .*unknown serialisation"
    ):
        decode_fragment(record, "epoch 1")


@pytest.mark.parametrize(
    ("hints", "dtype", "message"),
    [
        ({"serialisation": "zstd"}, "f8", "hints['serialisation'] is 'C' or 'hilbert'"),
        ({"serialisation": "strings"}, "f8", "hints['serialisation'] is 'C' or 'hilbert'"),
        ({"serialisation": "strings"}, STRING, "hints['serialisation'] is 'C' or 'hilbert'"),
        ({"serialisation": ["C"]}, "f8", "hints['serialisation'] is 'C' or 'hilbert'"),
        ({"serialisation": "hilbert"}, STRING, "strings take no statistics or serialisation"),
        ({"statistics": True}, STRING, "strings take no statistics or serialisation"),
    ],
)
def test_hints_no_writer_could_follow_are_refused_naming_the_dataset(
    hints: dict, dtype: object, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        serialisation.check_hint("/g/x", hints, np.dtype(dtype))
    assert str(refused.value).startswith(f"/g/x: {message}")


@pytest.mark.parametrize(
    ("hints", "dtype"),
    [
        ({}, "f8"),
        ({"serialisation": "C"}, "i2"),
        ({"serialisation": "hilbert", "statistics": True}, "f4"),
        ({}, STRING),
        ({"serialisation": "C", "statistics": False}, STRING),
    ],
)
def test_hints_a_writer_follows_pass(hints: dict, dtype: object) -> None:
    serialisation.check_hint("/x", hints, np.dtype(dtype))
