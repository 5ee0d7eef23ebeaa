"""pescador.io: window streamers over NPZ archives and NPY files (issue 4).

Every test is deterministic (fixed seeds). The statistical tests state their false-failure rate:
the uniformity test is a chi-square test at alpha = 1e-4 on a fixed seed, and the slow sweep
repeats it over many seeds.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pescador
import pescador.io as pio
import pescador.io._windows as window_reads
from pescador import DataError, PescadorError, StateError, Streamer
from pescador._seeds import Seed
from pescador.io import (
    DataFileError,
    ShortFileWarning,
    WindowIterator,
    group_npy_files,
    npy_streamers,
    npy_windows,
    npz_streamers,
    npz_windows,
)

# --------------------------------------------------------------------------- helpers


def example(rows: int, features: int = 3, first: int = 0) -> dict[str, np.ndarray]:
    """X: row r holds r + first in every column; Y: r + first. So a window names its rows."""
    y = np.arange(first, first + rows, dtype=np.int64)
    x = np.repeat(y[:, None], features, axis=1).astype(np.float32)
    return {"X": x, "Y": y}


def write_npz(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return str(path)


def write_npy(folder, name, **arrays):
    paths = {}
    for key, array in arrays.items():
        paths[key] = str(folder / f"{name}.{key}.npy")
        np.save(paths[key], array)
    return paths


def starts(windows, key="Y"):
    return [int(w[key][0]) for w in windows]


def take(iterator, k):
    return [next(iterator) for _ in range(k)]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


@pytest.fixture
def npz(tmp_path):
    return write_npz(tmp_path / "song.npz", **example(40))


@pytest.fixture(autouse=True)
def fresh_layouts():
    pio._LAYOUTS.clear()
    yield
    pio._LAYOUTS.clear()


# --------------------------------------------------------------------------- windows


def test_npz_windows_are_contiguous_rows_of_every_array(npz):
    with npz_windows(npz, 5, random_state=0) as it:
        windows = take(it, 50)
    for w in windows:
        assert list(w) == ["X", "Y"]
        assert w["X"].shape == (5, 3) and w["X"].dtype == np.float32
        assert w["Y"].shape == (5,) and w["Y"].dtype == np.int64
        first = int(w["Y"][0])
        assert w["Y"].tolist() == list(range(first, first + 5))
        assert (w["X"] == w["Y"][:, None]).all()


def test_windows_are_independent_writable_copies(npz):
    with npz_windows(npz, 5, random_state=0) as it:
        a, b = take(it, 2)
    for w in (a, b):
        for array in w.values():
            assert array.flags.writeable and array.flags.c_contiguous
            assert array.flags.owndata or array.base is None or array.base.base is None
    a["X"][:] = -1
    assert (b["X"] >= 0).all()


@pytest.mark.parametrize("rows, n", [(10, 10), (10, 7), (25, 1), (1, 1)])
def test_every_valid_window_is_drawn_the_last_included(tmp_path, rows, n):
    path = write_npz(tmp_path / "a.npz", **example(rows))
    with npz_windows(path, n, random_state=1) as it:
        seen = set(starts(take(it, 2000)))
    # Each of the <= 25 starts is missed with probability (1 - 1/25)**2000 < 1e-35.
    assert seen == set(range(rows - n + 1))


def test_offsets_are_uniform_chi_square(tmp_path):
    from scipy import stats

    path = write_npz(tmp_path / "a.npz", **example(20 + 16 - 1))  # 20 valid starts
    with npz_windows(path, 16, random_state=12345) as it:
        counts = np.bincount(starts(take(it, 20_000)), minlength=20)
    assert len(counts) == 20
    assert stats.chisquare(counts).pvalue > 1e-4  # false-failure rate 1e-4 (fixed seed)


@pytest.mark.slow
def test_offsets_are_uniform_over_many_seeds(tmp_path):
    from scipy import stats

    path = write_npz(tmp_path / "a.npz", **example(50))
    pvalues = []
    for seed in range(200):
        with npz_windows(path, 10, random_state=seed) as it:
            counts = np.bincount(starts(take(it, 2000)), minlength=41)
        pvalues.append(stats.chisquare(counts).pvalue)
    # Under uniformity the p-values are uniform: Kolmogorov-Smirnov at alpha = 1e-4.
    assert stats.kstest(pvalues, "uniform").pvalue > 1e-4


def test_keys_choose_and_order_the_arrays(tmp_path):
    path = write_npz(tmp_path / "a.npz", Z=np.zeros((30, 2)), **example(30))
    with npz_windows(path, 4, keys=["Y", "X"]) as it:
        assert list(next(it)) == ["Y", "X"]
    with npz_windows(path, 4, keys="Z") as it:
        assert list(next(it)) == ["Z"]
    with npz_windows(path, 4) as it:
        assert list(next(it)) == ["Z", "X", "Y"]  # archive order


def test_a_key_not_read_need_not_match_the_others(tmp_path):
    path = write_npz(tmp_path / "a.npz", meta=np.zeros(3), **example(30))
    with npz_windows(path, 4, keys=["X", "Y"]) as it:
        assert next(it)["X"].shape == (4, 3)


@pytest.mark.parametrize(
    "x",
    [
        np.arange(60, dtype=np.float64).reshape(20, 3),  # 2-D
        np.arange(20, dtype=np.int16),  # 1-D
        np.arange(20 * 4 * 5, dtype=np.float32).reshape(20, 4, 5),  # 3-D rows
        np.asfortranarray(np.arange(60, dtype=np.float64).reshape(20, 3)),  # Fortran order
        np.asfortranarray(np.arange(20 * 4 * 5, dtype=np.int32).reshape(20, 4, 5)),
        np.arange(60, dtype=">f8").reshape(20, 3),  # big-endian
        np.array([(i, 2.0 * i) for i in range(20)], dtype=[("a", "<i4"), ("b", "<f8")]),
        np.arange(20 * 3, dtype=np.complex64).reshape(20, 3),
        np.zeros((20, 0), np.float32),  # empty rows
    ],
    ids=[
        "2d",
        "1d",
        "3d",
        "fortran",
        "fortran-3d",
        "big-endian",
        "structured",
        "complex",
        "empty-rows",
    ],
)
@pytest.mark.parametrize(
    "how", ["read-whole", "read-by-window", "compressed"], ids=lambda how: how
)
def test_any_array_layout_gives_the_rows_it_holds(tmp_path, monkeypatch, x, how):
    monkeypatch.setattr(window_reads, "SMALL_ARRAY_BYTES", 1 << 30 if how == "read-whole" else 0)
    y = np.arange(20)
    path = write_npz(tmp_path / "a.npz", compressed=how == "compressed", X=x, Y=y)
    with npz_windows(path, 6, random_state=3) as it:
        for w in take(it, 30):
            first = int(w["Y"][0])
            np.testing.assert_array_equal(w["X"], x[first : first + 6])
            assert w["X"].dtype == x.dtype and w["X"].flags.c_contiguous


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_npy_format_version(tmp_path, version):
    data = example(30)
    files = {}
    for key, array in data.items():
        files[key] = str(tmp_path / f"a.{key}.npy")
        with open(files[key], "wb") as f:
            np.lib.format.write_array(f, array, version=version)
    with npy_windows(files, 8, random_state=0) as it:
        w = next(it)
    assert (w["X"] == w["Y"][:, None]).all()


def test_headers_written_by_python_2(tmp_path):
    text = b"{'descr': '<i8', 'fortran_order': False, 'shape': (10L, 2L), }"
    path = tmp_path / "old.X.npy"
    data = np.arange(20, dtype="<i8").tobytes()
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data)
    with npy_windows({"X": path}, 10) as it:
        assert next(it)["X"].tolist() == np.arange(20).reshape(10, 2).tolist()


def test_stored_compressed_and_npy_give_the_same_windows(tmp_path, monkeypatch):
    data = example(300, features=64)
    stored = write_npz(tmp_path / "s.npz", **data)
    packed = write_npz(tmp_path / "c.npz", compressed=True, **data)
    files = write_npy(tmp_path, "a", **data)
    runs = []
    for make in (
        lambda: npz_windows(stored, 16, random_state=7),
        lambda: npz_windows(packed, 16, random_state=7),
        lambda: npy_windows(files, 16, random_state=7),
    ):
        with make() as it:
            runs.append(starts(take(it, 100)))
    # As on platforms without preadv:
    monkeypatch.setattr(window_reads, "_pread", window_reads._pread_fallback)
    with npz_windows(stored, 16, random_state=7) as it:
        runs.append(starts(take(it, 100)))
    assert runs[0] == runs[1] == runs[2] == runs[3]


def test_tags_are_added_to_every_window(npz):
    with npz_windows(npz, 4, tags={"file": 7, "song": "a"}) as it:
        w = next(it)
    assert w["file"] == 7 and w["song"] == "a" and set(w) == {"X", "Y", "file", "song"}


# --------------------------------------------------------------------------- short files


def test_a_short_file_raises_naming_it(tmp_path):
    path = write_npz(tmp_path / "tiny.npz", **example(3))
    with pytest.raises(DataFileError, match=r"tiny\.npz: 3 rows, fewer than one window of 4"):
        next(npz_windows(path, 4))


def test_a_short_file_can_be_skipped_with_a_warning(tmp_path):
    path = write_npz(tmp_path / "tiny.npz", **example(3))
    with pytest.warns(ShortFileWarning, match=r"tiny\.npz: 3 rows.*skipped"):
        assert list(npz_windows(path, 4, short="skip")) == []


def test_a_mux_skips_short_files_and_streams_the_others(tmp_path):
    write_npz(tmp_path / "a-tiny.npz", **example(3))
    write_npz(tmp_path / "b-long.npz", **example(50, first=1000))
    streams = npz_streamers(tmp_path, 8, short="skip")
    mux = pescador.StochasticMux(streams, n_active=2, rate=4, random_state=0)
    with pytest.warns(ShortFileWarning):
        windows = list(mux.iterate(max_iter=40))
    assert len(windows) == 40 and all(w["Y"][0] >= 1000 for w in windows)


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.npz: No such file"):
        next(npz_windows(tmp_path / "nope.npz", 4))


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a valid NPZ"),
        (b"this is not a zip file at all" * 10, "not a valid NPZ"),
    ],
)
def test_not_an_archive(tmp_path, content, problem):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=rf"bad\.npz: {problem}"):
        next(npz_windows(path, 4))


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_archive(tmp_path, compressed):
    path = write_npz(tmp_path / "cut.npz", compressed=compressed, **example(500, 32))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"cut\.npz: "):
        next(npz_windows(path, 4))


@pytest.mark.parametrize("compressed", [False, True])
def test_corrupt_member_data(tmp_path, compressed):
    path = write_npz(tmp_path / "rot.npz", compressed=compressed, **example(500, 32))
    raw = bytearray(Path(path).read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("X.npy")
    middle = info.header_offset + 30 + len("X.npy") + 200
    raw[middle : middle + 64] = b"\xff" * 64
    Path(path).write_bytes(raw)
    if compressed:  # a compressed member is checked (zlib, CRC) when it is read
        with pytest.raises(DataFileError, match=r"rot\.npz: member 'X\.npy'"):
            next(npz_windows(path, 4))
    else:  # stored bytes are read in place: a corrupt header is caught, data bits are data
        with npz_windows(path, 4) as it:
            assert next(it)["X"].shape == (4, 32)


@pytest.mark.parametrize("where", [0, 3, 40])
def test_corrupt_compressed_member_header(tmp_path, where):
    path = write_npz(tmp_path / "rot.npz", compressed=True, **example(500, 32))
    raw = bytearray(Path(path).read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("X.npy")
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len  # the deflate stream
    raw[start + where : start + where + 16] = bytes(range(16))
    Path(path).write_bytes(raw)
    with pytest.raises(DataFileError, match=r"rot\.npz: member 'X\.npy'"):
        next(npz_windows(path, 4))


def test_encrypted_or_exotic_members(tmp_path):
    path = write_npz(tmp_path / "enc.npz", **example(30))
    raw = bytearray(Path(path).read_bytes())
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    for info in infos:  # set the "encrypted" flag in the local and central headers
        raw[info.header_offset + 6] |= 1
    central = raw.rfind(b"PK\x01\x02")
    while central > 0:
        raw[central + 8] |= 1
        central = raw.rfind(b"PK\x01\x02", 0, central)
    Path(path).write_bytes(raw)
    with pytest.raises(DataFileError, match=r"enc\.npz: member 'X\.npy' cannot be read"):
        next(npz_windows(path, 4))


def test_corrupt_npy_header(tmp_path):
    path = tmp_path / "a.X.npy"
    np.save(path, np.zeros((10, 2)))
    raw = bytearray(path.read_bytes())
    raw[0:6] = b"NOTNPY"
    path.write_bytes(raw)
    with pytest.raises(DataFileError, match=r"a\.X\.npy: the file is not a valid NPY array"):
        next(npy_windows({"X": path}, 4))


def test_truncated_npy(tmp_path):
    path = tmp_path / "a.X.npy"
    np.save(path, np.zeros((100, 20)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=r"a\.X\.npy: the file is truncated"):
        next(npy_windows({"X": path}, 4))


def test_arrays_of_different_lengths(tmp_path):
    path = write_npz(tmp_path / "a.npz", X=np.zeros((10, 2)), Y=np.zeros(9))
    with pytest.raises(DataFileError, match=r"a\.npz: .*different lengths: X has 10, Y has 9"):
        next(npz_windows(path, 4))


def test_npy_files_of_different_lengths(tmp_path):
    files = write_npy(tmp_path, "a", X=np.zeros((10, 2)), Y=np.zeros(9))
    with pytest.raises(DataFileError, match="different lengths: X has 10, Y has 9"):
        next(npy_windows(files, 4))


def test_missing_key(npz):
    with pytest.raises(DataFileError, match=r"song\.npz: no array named 'Z' \(it has: X, Y\)"):
        next(npz_windows(npz, 4, keys=["X", "Z"]))


def test_zero_dimensional_array(tmp_path):
    path = write_npz(tmp_path / "a.npz", X=np.float64(3.0))
    with pytest.raises(DataFileError, match="'X' is 0-dimensional"):
        next(npz_windows(path, 1))


def test_object_arrays_are_refused(tmp_path):
    path = write_npz(tmp_path / "a.npz", X=np.array([{}, {}, {}], dtype=object))
    with pytest.raises(DataFileError, match=r"a\.npz: member 'X\.npy' holds Python objects"):
        next(npz_windows(path, 1))


def test_an_archive_without_arrays(tmp_path):
    path = tmp_path / "a.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(DataFileError, match="holds no arrays"):
        next(npz_windows(path, 1))


def test_a_file_that_shrinks_while_read(tmp_path):
    path = write_npz(tmp_path / "a.npz", **example(20_000, 8))
    with npz_windows(path, 4, random_state=0) as it:
        next(it)
        os.truncate(path, 1000)
        with pytest.raises(DataFileError, match=r"a\.npz: the file shrank"):
            take(it, 100)


def test_a_file_rewritten_on_disk_is_read_afresh(tmp_path):
    path = tmp_path / "a.npz"
    write_npz(path, **example(30))
    with npz_windows(path, 4) as it:
        next(it)
    write_npz(path, **example(30, first=500), extra=np.zeros((30, 2)))
    with npz_windows(path, 4) as it:
        w = next(it)
    assert set(w) == {"X", "Y", "extra"} and w["Y"][0] >= 500


def test_errors_are_data_errors_and_pickle(tmp_path):
    err = DataFileError(tmp_path / "a.npz", "it is broken")
    assert isinstance(err, DataError) and isinstance(err, PescadorError)
    assert str(err) == f"{tmp_path / 'a.npz'}: it is broken"
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.problem, str(again)) == (err.path, err.problem, str(err))


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: npz_windows(p, 0), "n=0"),
        (lambda p: npz_windows(p, 2.5), "n=2.5"),
        (lambda p: npz_windows(p, True), "n=True"),
        (lambda p: npz_windows(p, "4"), "n='4'"),
        (lambda p: npz_windows(p, 4, keys=[]), "keys=.*expected"),
        (lambda p: npz_windows(p, 4, keys=["X", "X"]), "distinct"),
        (lambda p: npz_windows(p, 4, keys=[1]), "keys="),
        (lambda p: npz_windows(p, 4, short="ignore"), "short='ignore'"),
        (lambda p: npz_windows(p, 4, tags=[1]), "tags="),
        (lambda p: npz_windows(p, 4, random_state="x"), "random_state"),
        (lambda p: npz_windows(3, 4), "path=3"),
        (lambda p: npy_windows([p], 4), "files="),
        (lambda p: npy_windows({}, 4), "files="),
        (lambda p: npz_streamers(p, 4, id_key=3), "id_key=3"),
        (lambda p: npz_streamers([], 4), "names no files"),
    ],
)
def test_bad_arguments_fail_at_the_call(npz, call, match):
    with pytest.raises(PescadorError, match=match):
        call(npz)


def test_numpy_integers_are_window_sizes(npz):
    with npz_windows(npz, np.int64(4)) as it:
        assert next(it)["X"].shape == (4, 3)


def test_nothing_is_opened_before_the_first_next(tmp_path):
    it = npz_windows(tmp_path / "does-not-exist.npz", 4)
    assert isinstance(it, WindowIterator) and not it.started
    it.close()


# --------------------------------------------------------------------------- randomness


def test_an_explicit_seed_replays_every_activation(npz):
    stream = Streamer(npz_windows, npz, 4, random_state=5)
    first = starts(stream.iterate(max_iter=30))
    assert first == starts(stream.iterate(max_iter=30))
    assert first != starts(Streamer(npz_windows, npz, 4, random_state=6).iterate(max_iter=30))


@pytest.mark.parametrize(
    "seed",
    [np.random.SeedSequence(5), np.random.RandomState(5), np.random.default_rng(5)],
    ids=["SeedSequence", "RandomState", "Generator"],
)
def test_a_caller_rng_replays_and_is_not_advanced(npz, seed):
    before = pickle.dumps(seed)
    stream = Streamer(npz_windows, npz, 4, random_state=seed)
    assert starts(stream.iterate(max_iter=30)) == starts(stream.iterate(max_iter=30))
    assert pickle.dumps(seed) == before


def test_the_default_draws_a_new_seed_per_activation_from_numpy(npz):
    stream = Streamer(npz_windows, npz, 4)
    np.random.seed(3)
    a, b = starts(stream.iterate(max_iter=30)), starts(stream.iterate(max_iter=30))
    np.random.seed(3)
    assert a != b and a == starts(stream.iterate(max_iter=30))


def test_a_seeded_mux_makes_the_whole_stream_reproducible(tmp_path):
    for k in range(6):
        write_npz(tmp_path / f"{k}.npz", **example(100, first=1000 * k))
    mux = pescador.StochasticMux(npz_streamers(tmp_path, 8), 3, 5, random_state=11)
    a = starts(mux.iterate(max_iter=300))
    assert a == starts(mux.iterate(max_iter=300))
    other = pescador.StochasticMux(npz_streamers(tmp_path, 8), 3, 5, random_state=12)
    assert a != starts(other.iterate(max_iter=300))
    # Activations of one file draw different windows (each has its own seed).
    by_file = [s % 1000 for s in a if s // 1000 == a[0] // 1000]
    assert len(set(by_file)) > len(by_file) // 2


def test_the_activation_rng_is_used_as_given(npz):
    seed = Seed(4, (1, 2))
    given = seed.generator(0)  # what a Streamer passes for ACTIVATION_RNG
    it = npz_windows(npz, 4, random_state=given)
    it._seed = seed  # as a Streamer sets it
    assert it._generator() is given  # used as is: no cost to rebuild it
    explicit = npz_windows(npz, 4, random_state=given)
    assert explicit._generator() is not given  # a caller's generator: replayed, not advanced


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("delivered", [0, 1, 15, 16, 17, 48, 111, 112, 1007, 1008, 1009, 2500])
def test_a_restored_iterator_continues_exactly(npz, delivered):
    with npz_windows(npz, 4, random_state=9) as it:
        expected = starts(take(it, delivered + 40))
    with npz_windows(npz, 4, random_state=9) as it:
        take(it, delivered)
        state = json.loads(json.dumps(it.state_dict()))
    resumed = npz_windows(npz, 4, random_state=9)
    resumed.load_state_dict(state)
    with resumed:
        assert starts(take(resumed, 40)) == expected[delivered:]
        assert resumed.items_delivered == delivered + 40


def test_state_restores_the_generator_whatever_the_seed_now(npz):
    with npz_windows(npz, 4) as it:  # a fresh seed from numpy's global RNG
        take(it, 20)
        state = it.state_dict()
        expected = starts(take(it, 10))
    resumed = npz_windows(npz, 4)
    resumed.load_state_dict(state)
    assert starts(take(resumed, 10)) == expected
    resumed.close()


def test_a_mux_of_window_streamers_resumes_exactly(tmp_path):
    for k in range(8):
        write_npz(tmp_path / f"{k}.npz", **example(100, first=1000 * k))
    mux = pescador.StochasticMux(npz_streamers(tmp_path, 8), 3, 5, random_state=2)
    it = mux.iterate()
    take(it, 137)
    state = json.loads(json.dumps(it.state_dict()))
    expected = starts(take(it, 200))
    it.close()
    with mux.iterate(state=state) as resumed:
        assert starts(take(resumed, 200)) == expected


def test_state_must_be_loaded_before_the_first_next_and_match(npz):
    with npz_windows(npz, 4, random_state=0) as it:
        next(it)
        state = it.state_dict()
        with pytest.raises(StateError, match="before the first next"):
            it.load_state_dict(state)
    with pytest.raises(StateError, match="window=4 in the state, 5 here"):
        npz_windows(npz, 5).load_state_dict(state)


def test_state_of_a_finished_iterator(tmp_path):
    path = write_npz(tmp_path / "tiny.npz", **example(2))
    it = npz_windows(path, 4, short="skip")
    with pytest.warns(ShortFileWarning):
        assert list(it) == []
    state = it.state_dict()
    resumed = npz_windows(path, 4, short="skip")
    resumed.load_state_dict(state)
    with pytest.warns(ShortFileWarning):
        assert list(resumed) == []


# --------------------------------------------------------------------------- resources


@needs_proc
def test_files_are_open_only_while_active(tmp_path):
    for k in range(10):
        write_npz(tmp_path / f"{k}.npz", **example(200, 100))  # X: 80 kB, read by window
        write_npy(tmp_path, f"p{k}", **example(200, 100))
    before = open_fds()
    for streams in (npz_streamers(tmp_path, 8), npy_streamers(tmp_path, 8)):
        mux = pescador.StochasticMux(streams, n_active=4, rate=6, random_state=0)
        with pescador.buffer_stream(mux, 5) as batches:
            take(batches, 50)
            assert 0 < len(open_fds() - before) <= 4 * 2
        assert open_fds() == before  # closed with the pipeline
    it = npz_windows(tmp_path / "0.npz", 4)
    next(it)
    assert len(open_fds() - before) == 1
    del it  # dropped without close: CPython frees it at once (no reference cycle)
    assert open_fds() == before


@needs_proc
def test_no_descriptor_leaks_on_errors(tmp_path):
    files = write_npy(tmp_path, "a", X=np.zeros((10, 2)), Y=np.zeros(9))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    before = open_fds()
    for make in (
        lambda: npy_windows(files, 4),
        lambda: npz_windows(bad, 4),
        lambda: npy_windows({**files, "Z": tmp_path / "missing.npy"}, 4),
    ):
        with pytest.raises(DataFileError):
            next(make())
    assert open_fds() == before


@needs_proc
def test_no_descriptor_for_files_read_whole(tmp_path):
    files = write_npy(tmp_path, "a", X=np.zeros((20_000, 8)), Y=np.zeros(20_000, np.int8))
    before = open_fds()
    with npy_windows(files, 4) as it:
        next(it)
        assert len(open_fds() - before) == 1  # Y (20 kB) was read whole and closed
    assert open_fds() == before


def test_a_dropped_iterator_is_collected_without_gc(npz):
    gc.disable()
    try:
        import weakref

        it = npz_windows(npz, 4)
        next(it)
        ref = weakref.ref(it)
        del it
        assert ref() is None
    finally:
        gc.enable()


def test_streamers_pickle(tmp_path, npz):
    stream = npz_streamers(npz, 4, id_key="f")[0]
    again = pickle.loads(pickle.dumps(stream))
    assert starts(again.iterate(max_iter=3)) != [] and again.streamer is npz_windows


# --------------------------------------------------------------------------- many files


def test_npz_streamers_from_a_directory_a_file_or_a_list(tmp_path):
    for name in ("b", "a", "c"):
        write_npz(tmp_path / f"{name}.npz", **example(20))
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "sub.npz").mkdir()  # a directory, not an archive
    streams = npz_streamers(tmp_path, 4)
    assert [os.path.basename(s.args[0]) for s in streams] == ["a.npz", "b.npz", "c.npz"]
    assert len(npz_streamers(tmp_path / "a.npz", 4)) == 1
    listed = npz_streamers([tmp_path / "c.npz", str(tmp_path / "a.npz")], 4, keys="X")
    assert [s.args[0] for s in listed] == [str(tmp_path / "c.npz"), str(tmp_path / "a.npz")]
    assert list(next(iter(listed[0]))) == ["X"]


def test_helpers_report_bad_sources(tmp_path):
    with pytest.raises(DataFileError, match="missing: No such file or directory"):
        npz_streamers(tmp_path / "missing", 4)
    with pytest.raises(DataFileError, match=r"no \.npz files in this directory"):
        npz_streamers(tmp_path, 4)
    with pytest.raises(DataFileError, match=r"no \.npy files in this directory"):
        npy_streamers(tmp_path, 4)


def test_id_key_names_the_file_of_every_window(tmp_path):
    for k in range(4):
        write_npz(tmp_path / f"{k}.npz", **example(30, first=1000 * k))
    streams = npz_streamers(tmp_path, 4, id_key="file")
    mux = pescador.ShuffledMux(streams, random_state=0)
    for w in mux.iterate(max_iter=100):
        assert w["file"] == w["Y"][0] // 1000


def test_validate_reads_headers_now(tmp_path):
    write_npz(tmp_path / "a.npz", **example(30))
    write_npz(tmp_path / "b.npz", **example(2))
    (tmp_path / "c.npz").write_bytes(b"junk")
    with pytest.raises(DataFileError, match=r"c\.npz: not a valid NPZ"):
        with pytest.warns(ShortFileWarning):
            npz_streamers(tmp_path, 4, validate=True, short="skip")
    os.remove(tmp_path / "c.npz")
    with pytest.raises(DataFileError, match=r"b\.npz: 2 rows"):
        npz_streamers(tmp_path, 4, validate=True)
    with pytest.warns(ShortFileWarning, match=r"b\.npz"):
        streams = npz_streamers(tmp_path, 4, validate=True, short="skip", id_key="i")
    assert [os.path.basename(s.args[0]) for s in streams] == ["a.npz"]
    assert streams[0].kwargs == {"short": "skip", "tags": {"i": 0}}


def test_group_npy_files():
    groups = group_npy_files(["d/x.y.A.npy", "d/x.y.B.npy", "e/x.y.A.npy"])
    assert groups == {
        "d/x.y": {"A": "d/x.y.A.npy", "B": "d/x.y.B.npy"},
        "e/x.y": {"A": "e/x.y.A.npy"},
    }
    for bad in ("d/a.npy", "d/a.X.npz", "d/.X.npy", "d/a..npy"):
        with pytest.raises(DataFileError, match="expected an NPY file named"):
            group_npy_files([bad])


def test_npy_streamers_pair_files_by_name(tmp_path):
    for k in range(3):
        write_npy(tmp_path, f"song{k}", **example(30, first=1000 * k))
    streams = npy_streamers(tmp_path, 4, keys=["Y", "X"])
    assert len(streams) == 3
    for k, stream in enumerate(streams):
        assert list(stream.args[0]) == ["Y", "X"]
        w = next(iter(stream))
        assert list(w) == ["Y", "X"] and w["Y"][0] // 1000 == k
    listed = npy_streamers([{"A": streams[1].args[0]["X"]}], 4)
    assert list(next(iter(listed[0]))) == ["A"]
    paths = sorted(str(p) for p in tmp_path.glob("song0.*.npy"))
    assert list(npy_streamers(paths, 4)[0].args[0]) == ["X", "Y"]


def test_npy_streamers_need_every_key(tmp_path):
    write_npy(tmp_path, "a", **example(30))
    write_npy(tmp_path, "b", X=np.zeros((30, 3)))
    with pytest.raises(DataFileError, match=r"b\.X\.npy: its example has no array 'Y'"):
        npy_streamers(tmp_path, 4, keys=["X", "Y"])


def test_the_document_pipeline(tmp_path):
    """The "Sampling from disk" pipeline, with the ready-made streamers."""
    for k in range(40):
        write_npz(tmp_path / f"{k:02d}.npz", **example(64, first=1000 * k))
    streams = npz_streamers(tmp_path, 16)
    mux_stream = pescador.StochasticMux(streams, n_active=32, rate=16, random_state=0)
    with pescador.buffer_stream(mux_stream, 16) as batches:
        for batch in take(batches, 20):
            assert batch["X"].shape == (16, 16, 3) and batch["Y"].shape == (16, 16)
            assert (np.diff(batch["Y"], axis=1) == 1).all()


def test_module_surface():
    assert set(pio.__all__) == {
        "DataFileError",
        "ShortFileWarning",
        "WindowIterator",
        "group_npy_files",
        "npy_streamers",
        "npy_windows",
        "npz_streamers",
        "npz_windows",
    }
    assert pio.npz_windows.__doc__ and "Memory" in pio.npz_windows.__doc__
    assert "pescador.io" in sys.modules
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Streamer(npz_windows, "x.npz", 4)  # an iterator factory: accepted by Streamer
