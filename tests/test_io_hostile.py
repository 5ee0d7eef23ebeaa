"""pescador.io on hostile input: crafted headers, lying archives, odd files and directories.

Every file a corpus holds is untrusted. Each case here must end in a :class:`DataFileError`
naming the file and what is wrong, quickly (every test has a timeout of its own), without
allocating more than a window's worth of memory (checked in a subprocess whose address space
is limited), and ``pescador demo`` must report it in one line with exit status 2. Files are
crafted byte by byte in ``tmp_path``; nothing is left behind.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import pescador.io as pio
import pescador.io._files as io_files
import pescador.io._layout as layout
import pescador.io._windows as window_reads
from pescador.cli import main
from pescador.io import DataFileError, npy_windows, npz_streamers, npz_windows

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parent.parent
LINUX = sys.platform.startswith("linux")


@pytest.fixture(autouse=True)
def fresh_layouts():
    pio._LAYOUTS.clear()
    yield
    pio._LAYOUTS.clear()


# --------------------------------------------------------------------------- crafting files


def header(shape, descr="<f8", fortran=False) -> str:
    return repr({"descr": descr, "fortran_order": fortran, "shape": shape})


def npy_bytes(text, version=(1, 0), data=b"", length=None) -> bytes:
    """An NPY file with the header ``text`` as given (str or bytes), and ``data`` after it."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    field = struct.pack("<H" if version[0] == 1 else "<I", len(raw) if length is None else length)
    return b"\x93NUMPY" + bytes(version) + field + raw + data


def write_npy(path, text, **options) -> Path:
    path.write_bytes(npy_bytes(text, **options))
    return path


def deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


def write_zip(path, members, directory_shift=0) -> Path:
    """A zip written by hand: ``members`` are (name, bytes as stored, method, size claimed).

    ``directory_shift`` moves where the end record says the directory starts.
    """
    body, directory = bytearray(), bytearray()
    for name, stored, method, size in members:
        raw = name.encode()
        sizes = (0, len(stored), size, len(raw))
        fields = (20, 20, 0, method, 0, 0x21, *sizes, 0, 0, 0, 0, 0, len(body))
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *fields)
        directory += raw
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, *sizes, 0)
        body += raw + stored
    count = min(len(members), 0xFFFE)
    start = len(body) + directory_shift
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def a_good_npz(folder: Path, name: str = "good.npz") -> Path:
    np.savez(folder / name, X=np.zeros((40, 3), np.float32), Y=np.arange(40))
    return folder / name


def npy_error(path: Path) -> str:
    with pytest.raises(DataFileError) as info:
        next(npy_windows({"X": path}, 4))
    assert info.value.path == str(path)
    return info.value.problem


def npz_error(path: Path) -> str:
    with pytest.raises(DataFileError) as info:
        next(npz_windows(path, 4))
    assert info.value.path == str(path)
    return info.value.problem


# --------------------------------------------------------------------------- NPY headers

NOT_NPY = "the file is not a valid NPY array"


def test_a_negative_dimension(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", header((-5, 3)), data=bytes(240))
    assert npy_error(path) == (
        f"{NOT_NPY} (shape (-5, 3): expected a tuple of non-negative integers)"
    )


def test_a_fortran_array_claiming_a_trillion_rows(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", header((10**12, 2), fortran=True), data=bytes(64))
    problem = npy_error(path)
    assert problem == "the file is truncated: its data needs 14.6 TiB, there are 64 bytes"


def test_a_header_of_megabytes_is_refused_before_it_is_read(tmp_path):
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "1, " * 2_000_000 + ")}"
    path = write_npy(tmp_path / "a.X.npy", text, version=(3, 0))
    start = time.perf_counter()
    problem = npy_error(path)
    assert time.perf_counter() - start < 1.0
    assert problem == f"{NOT_NPY} (a header of 5.7 MiB, more than the 64.0 KiB allowed)"


@pytest.mark.parametrize(
    "version, length, problem",
    [
        ((1, 0), 60_000, "the file ends in its header: 55 of its 60000 bytes are there"),
        ((2, 0), 2**32 - 1, "a header of 4.0 GiB, more than the 64.0 KiB allowed"),
        ((3, 0), 2**20, "a header of 1.0 MiB, more than the 64.0 KiB allowed"),
    ],
)
def test_a_header_length_beyond_the_file(tmp_path, version, length, problem):
    path = write_npy(tmp_path / "a.X.npy", header((3,)), version=version, length=length)
    assert npy_error(path) == f"{NOT_NPY} ({problem})"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "no NPY magic string"),
        (b"NOTNPY\x01\x00" + bytes(100), "no NPY magic string"),
        (b"\x93NUMPY\x01", "the file ends in its header"),
        (b"\x93NUMPY\x09\x00" + bytes(100), "unknown format version 9.0"),
        (b"\x93NUMPY\x01\x00\x10", "the file ends in its header"),
    ],
)
def test_a_cut_or_unknown_preamble(tmp_path, content, problem):
    path = tmp_path / "a.X.npy"
    path.write_bytes(content)
    assert npy_error(path).startswith(f"{NOT_NPY} ({problem}")


def test_data_shorter_than_the_shape_says(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", header((1000, 3)), data=bytes(8 * 30))
    assert npy_error(path) == "the file is truncated: its data needs 23.4 KiB, there are 240 bytes"
    stored = tmp_path / "stored.npz"
    with zipfile.ZipFile(stored, "w") as archive:
        archive.writestr("X.npy", npy_bytes(header((1000, 3)), data=bytes(240)))
    assert npz_error(stored).startswith("member 'X.npy' is truncated: its data needs 23.4 KiB")
    packed = tmp_path / "packed.npz"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("X.npy", npy_bytes(header((1000, 3)), data=bytes(240)))
    assert npz_error(packed).startswith("member 'X.npy' is truncated: its data needs 23.4 KiB")


@pytest.mark.parametrize("shape", [(2**40, 2**40), (2**64,), (10**4000, 0, 10**4000)])
def test_a_shape_larger_than_any_array(tmp_path, shape):
    path = write_npy(tmp_path / "a.X.npy", header(shape), data=bytes(64))
    problem = npy_error(path)
    assert problem.startswith(f"{NOT_NPY} (shape (")
    assert problem.endswith("of float64 is larger than any array can be)")
    assert len(problem) < 200  # a 4000-digit dimension is cut short


def test_an_empty_shape_of_many_rows_is_a_valid_array(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", header((10**15, 0)))  # 0 bytes of data
    with npy_windows({"X": path}, 4) as windows:
        assert next(windows)["X"].shape == (4, 0)


def test_absurdly_many_dimensions(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", header((1,) * 100), data=bytes(8))
    assert npy_error(path) == f"{NOT_NPY} (100 dimensions, more than 32)"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("__import__('os').system('false')", "its header is not a Python literal"),
        ("(" * 100_000, "a header of 97.7 KiB, more than the 64.0 KiB allowed"),
        ("(" * 60_000 + ")" * 60_000, "a header of 117.2 KiB, more than the 64.0 KiB allowed"),
        ("(" * 30_000 + ")" * 30_000, "its header is not a Python literal"),
        ("-" * 60_000 + "1", "its header is not a Python literal"),
        ("[1] * 10**9", "its header is not a Python literal"),
        ("[1, 2, 3]", "its header is not a dict of 'descr', 'fortran_order' and 'shape'"),
        ("{'descr': '<f8'}", "its header is not a dict of 'descr', 'fortran_order' and 'shape'"),
        (
            header((3,))[:-1] + ", 'extra': 1}",
            "its header is not a dict of 'descr', 'fortran_order' and 'shape'",
        ),
        (header([3]), "shape [3]: expected a tuple of non-negative integers"),
        (header((3.0,)), "shape (3.0,): expected a tuple of non-negative integers"),
        (header((True,)), "shape (True,): expected a tuple of non-negative integers"),
        (header((3,)).replace("False", "0"), "fortran_order 0: expected True or False"),
        (header((3,), descr="not a dtype"), "descr 'not a dtype' is not a numpy dtype"),
        (header((3,), descr=[("a",) * 3] * 3), "is not a numpy dtype"),
        (header((3,), descr=[[[[["<f8"]]]]] * 50), "is not a numpy dtype"),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else None,
)
def test_a_header_that_is_not_numpys(tmp_path, text, problem):
    path = write_npy(tmp_path / "a.X.npy", text, version=(3, 0), data=bytes(24))
    start = time.perf_counter()
    assert problem in npy_error(path)
    assert time.perf_counter() - start < 1.0


def test_a_header_that_is_not_text(tmp_path):
    path = write_npy(tmp_path / "a.X.npy", b"{'descr': '\xff\xfe'}", version=(3, 0))
    assert npy_error(path) == f"{NOT_NPY} (its header is not a Python literal)"


@pytest.mark.parametrize("descr", ["|O", [("a", "<f8"), ("b", "|O")]], ids=["object", "field"])
def test_python_objects_are_refused_before_any_unpickling(tmp_path, descr):
    path = write_npy(tmp_path / "a.X.npy", header((3,), descr=descr), data=bytes(64))
    assert re.fullmatch(
        r"the file holds Python objects \(dtype .*\): reading them needs pickle, which is refused",
        npy_error(path),
    )


@pytest.mark.parametrize("descr", ["|V0", [], "(3,)<f8"], ids=["V0", "no-fields", "subarray"])
def test_item_types_np_save_never_writes(tmp_path, descr):
    path = write_npy(tmp_path / "a.X.npy", header((10**12,), descr=descr), data=bytes(64))
    assert npy_error(path).endswith("np.save writes neither subarray nor 0-byte item types)")


# --------------------------------------------------------------------------- NPZ archives


def test_a_huge_zip_directory_is_refused_before_it_is_read(tmp_path):
    entry = ("X.npy", b"", zipfile.ZIP_STORED, 0)
    path = write_zip(tmp_path / "many.npz", [entry] * 30_000)
    start = time.perf_counter()
    problem = npz_error(path)
    assert time.perf_counter() - start < 1.0
    assert problem == (
        "not a valid NPZ (zip) archive (its directory claims 1.5 MiB, more than the 1.0 MiB "
        "allowed)"
    )


def test_a_member_claiming_more_than_deflate_can_hold(tmp_path):
    text = npy_bytes(header((10**12,)))
    path = write_zip(tmp_path / "bomb.npz", [("X.npy", deflated(text), 8, 2**32 - 2)])
    assert re.fullmatch(
        r"member 'X\.npy' is corrupt: \d+ bytes deflated cannot hold the 4\.0 GiB it claims",
        npz_error(path),
    )


def test_a_member_running_past_the_archive(tmp_path):
    stored = deflated(npy_bytes(header((3,)), data=bytes(24)))
    path = write_zip(tmp_path / "cut.npz", [("X.npy", stored, 8, 24 + 128)])
    raw = bytearray(path.read_bytes())
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<L", raw, central + 20, 10**6)  # its compressed size
    path.write_bytes(raw)
    assert npz_error(path) == "member 'X.npy' runs past the end of the archive"


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    monkeypatch.setattr(io_files, "MAX_PACKED_BYTES", 1 << 20)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X.npy", "w") as member:
            member.write(npy_bytes(header((8 << 20,), descr="|u1")))
            for _ in range(8):
                member.write(bytes(1 << 20))
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        problem = npz_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem == (
        "member 'X.npy' is compressed and would take 8.0 MiB decompressed, more than the 1.0 "
        "MiB allowed for an array read whole (save it with np.savez, uncompressed, to read it "
        "window by window)"
    )
    assert peak < 1 << 20


def test_a_compressed_member_of_the_limit_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(io_files, "MAX_PACKED_BYTES", 8 << 20)
    path = tmp_path / "big.npz"
    x = np.arange(2 << 20, dtype=np.int32).reshape(4, -1).T  # Fortran order, 8 MiB
    np.savez_compressed(path, X=x)
    with npz_windows(path, 3, random_state=0) as windows:
        x = next(windows)["X"]
    assert x.shape == (3, 4) and (np.diff(x[:, 0]) == 1).all()
    assert (x[:, 1] - x[:, 0] == (2 << 20) // 4).all()


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_compression_other_than_deflate_is_refused(tmp_path, method):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("X.npy", npy_bytes(header((3,)), data=bytes(24)))
    assert npz_error(path) == (
        f"member 'X.npy' cannot be read (zip compression method {method}: only stored and "
        "deflated members are read)"
    )


def test_a_local_header_before_the_start_of_the_file(tmp_path):
    member = ("X.npy", npy_bytes(header((3,)), data=bytes(24)), zipfile.ZIP_STORED, 152)
    path = write_zip(tmp_path / "shifted.npz", [member], directory_shift=100)
    assert npz_error(path) == "member 'X.npy' has a corrupt zip header"


def test_the_layout_cache_is_bounded_by_the_arrays_it_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "_LAYOUT_CACHE_ARRAYS", 40)
    for k in range(30):
        path = tmp_path / f"{k}.npz"
        np.savez(path, **{f"A{j}": np.zeros(4) for j in range(8)})
        next(npz_windows(path, 2))
        assert sum(map(len, pio._LAYOUTS.values())) <= 40
    assert len(pio._LAYOUTS) >= 3


# --------------------------------------------------------------------------- files, directories


def test_a_symlink_loop(tmp_path):
    a_good_npz(tmp_path)
    loop = tmp_path / "loop.npz"
    os.symlink(loop.name, loop)
    with pytest.raises(DataFileError, match=r"loop\.npz: Too many levels of symbolic links"):
        npz_streamers(tmp_path, 4, validate=True)
    assert npz_error(loop) == "Too many levels of symbolic links"
    with pytest.raises(DataFileError, match=r"loop\.npz: Too many levels of symbolic links"):
        npz_streamers(loop, 4)


def test_a_broken_symlink_is_reported_not_skipped(tmp_path):
    a_good_npz(tmp_path)
    os.symlink("nowhere.npz", tmp_path / "broken.npz")
    with pytest.raises(DataFileError, match=r"broken\.npz: No such file or directory"):
        npz_streamers(tmp_path, 4, validate=True)


def test_a_file_that_vanishes_between_listing_and_reading(tmp_path):
    a_good_npz(tmp_path, "a.npz")
    gone = a_good_npz(tmp_path, "b.npz")
    streams = npz_streamers(tmp_path, 4)
    gone.unlink()
    with pytest.raises(DataFileError, match=r"b\.npz: No such file or directory"):
        next(iter(streams[1]))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    a_good_npz(tmp_path)
    os.mkfifo(tmp_path / "pipe.npz")
    start = time.perf_counter()
    with pytest.raises(DataFileError, match=r"pipe\.npz: not a regular file \(a FIFO\)"):
        npz_streamers(tmp_path, 4, validate=True)
    assert npz_error(tmp_path / "pipe.npz") == "not a regular file (a FIFO)"
    assert time.perf_counter() - start < 1.0


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_or_a_directory_is_not_a_data_file(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.X.npy")
    assert npy_error(tmp_path / "zero.X.npy") == "not a regular file (a character device)"
    assert npy_error(tmp_path) == "not a regular file (a directory)"


def unprivileged(call):
    """``call()``'s result, run by a user who cannot read what only its owner may.

    Root reads a directory of mode 000, so as root ``call`` runs in a forked child that
    drops to the user ``nobody`` first.
    """
    if os.geteuid() != 0:
        return call()
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, str(call()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        result = pipe.read().decode()
    assert os.waitpid(pid, 0)[1] == 0, "the unprivileged child failed"
    return result


#: Root reads any file: a real permission error needs another user, from a forked child.
needs_permissions = pytest.mark.skipif(
    not hasattr(os, "geteuid") or (os.geteuid() == 0 and not hasattr(os, "fork")),
    reason="needs POSIX permissions, and fork to drop root's",
)


@pytest.fixture
def shared_dir():
    """A directory that the user ``nobody`` may enter (tmp_path may be private to root)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)
        for dirpath, dirnames, _ in os.walk(folder):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o755)


def problem_of(call) -> str:
    try:
        call()
    except DataFileError as exc:
        return str(exc)
    return "no error"


@needs_permissions
def test_an_unreadable_directory_or_file(shared_dir):
    locked = shared_dir / "locked"
    locked.mkdir()
    a_good_npz(locked)
    secret = a_good_npz(shared_dir, "secret.npz")
    os.chmod(secret, 0)
    os.chmod(locked, 0)
    assert unprivileged(lambda: problem_of(lambda: npz_streamers(locked, 4))) == (
        f"{locked}: Permission denied"
    )
    assert unprivileged(lambda: problem_of(lambda: next(npz_windows(secret, 4)))) == (
        f"{secret}: Permission denied"
    )


@pytest.mark.parametrize("rows", [10_000, 10], ids=["by-window", "whole"])
def test_an_io_error_while_reading(tmp_path, monkeypatch, rows):
    path = tmp_path / "a.X.npy"
    np.save(path, np.zeros((rows, 8)))

    def failing(fd, buffers, offset):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(window_reads, "_pread", failing)
    assert npy_error(path) == f"cannot be read ({os.strerror(errno.EIO)})"


def test_a_shrinking_file_is_named_among_the_files_of_an_example(tmp_path):
    files = {key: str(tmp_path / f"a.{key}.npy") for key in ("X", "Y")}
    np.save(files["X"], np.zeros((10_000, 8)))
    np.save(files["Y"], np.zeros((10_000, 8)))
    with npy_windows(files, 4, random_state=0) as windows:
        next(windows)
        os.truncate(files["Y"], 1000)
        with pytest.raises(DataFileError, match=r"a\.Y\.npy: the file shrank"):
            for _ in range(100):
                next(windows)


# --------------------------------------------------------------------------- memory


LIMITED = textwrap.dedent(
    """
    import resource, sys
    import pescador.io
    from pescador.io import DataFileError, npy_windows, npz_windows

    def address_space():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    limit = address_space() + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        exec(sys.argv[1])
    except DataFileError as exc:
        print(exc.problem)
    except MemoryError:
        print("MemoryError")
    else:
        print("read")
    """
)


def read_in_little_memory(code: str, headroom: int = 256 << 20) -> str:
    """What ``code`` ends with, run where at most ``headroom`` more bytes can be mapped."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, code, str(headroom)],
        capture_output=True,
        text=True,
        timeout=25,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def sparse_npy(path: Path, text: str, data_bytes: int) -> Path:
    """An NPY file of ``data_bytes`` of zeros that takes no room on disk."""
    write_npy(path, text)
    os.truncate(path, path.stat().st_size + data_bytes)
    return path


def crafted_for_memory(kind: str, tmp_path: Path) -> tuple[str, str]:
    """A file for the memory test, and the code reading it."""
    if kind == "fortran-trillion-rows":
        path = write_npy(tmp_path / "a.X.npy", header((10**12, 2), fortran=True), data=bytes(64))
    elif kind == "header-of-megabytes":
        text = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "1, " * 2_000_000 + ")}"
        path = write_npy(tmp_path / "a.X.npy", text, version=(3, 0))
    elif kind in ("fortran-2GiB", "c-order-2GiB"):
        fortran = kind == "fortran-2GiB"
        shape = (1 << 26, 4) if fortran else (1 << 18, 1024)
        path = sparse_npy(tmp_path / "a.X.npy", header(shape, fortran=fortran), 2**31)
        windows = f"npy_windows({{'X': {str(path)!r}}}, 16, random_state=0)"
        return str(path), f"w = {windows}\nfor _ in range(200): next(w)"
    elif kind == "zip-directory-of-a-million-entries":
        entry = ("X.npy", b"", zipfile.ZIP_STORED, 0)
        path = write_zip(tmp_path / "many.npz", [entry] * 1_000_000)
    elif kind == "deflated-member-claiming-4GiB":
        text = npy_bytes(header((2**29 - 64,)))
        path = write_zip(tmp_path / "bomb.npz", [("X.npy", deflated(text), 8, 2**32 - 2)])
    else:
        raise AssertionError(kind)
    reader = "npz_windows" if path.suffix == ".npz" else "npy_windows"
    target = repr(str(path)) if reader == "npz_windows" else f"{{'X': {str(path)!r}}}"
    return str(path), f"next({reader}({target}, 4))"


@pytest.mark.skipif(not LINUX, reason="RLIMIT_AS and /proc are Linux's")
@pytest.mark.parametrize(
    "kind, outcome",
    [
        ("fortran-trillion-rows", "the file is truncated: its data needs 14.6 TiB"),
        ("header-of-megabytes", f"{NOT_NPY} (a header of 5.7 MiB"),
        ("zip-directory-of-a-million-entries", "not a valid NPZ (zip) archive (its directory"),
        ("deflated-member-claiming-4GiB", "member 'X.npy' is corrupt"),
        ("fortran-2GiB", "read"),  # read window by window, not whole
        ("c-order-2GiB", "read"),
    ],
)
def test_hostile_files_are_refused_within_bounded_memory(tmp_path, kind, outcome):
    path, code = crafted_for_memory(kind, tmp_path)
    try:
        assert read_in_little_memory(code).startswith(outcome)
    finally:
        os.remove(path)  # up to 2 GiB (sparse): not left for pytest's kept temporary dirs


# --------------------------------------------------------------------------- pescador demo


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def hostile_corpus(kind: str, folder: Path) -> tuple[Path, str]:
    """A corpus of good files and one hostile file: the file, and what must be said of it."""
    a_good_npz(folder, "a.npz")
    bad = folder / "b.npz"
    if kind == "negative-dimension":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("X.npy", npy_bytes(header((-1,))))
        return bad, r"member 'X\.npy' is not a valid NPY array \(shape \(-1,\)"
    if kind == "symlink-loop":
        os.symlink(bad.name, bad)
        return bad, "Too many levels of symbolic links"
    if kind == "broken-symlink":
        os.symlink("nowhere", bad)
        return bad, "No such file or directory"
    if kind == "fifo":
        os.mkfifo(bad)
        return bad, r"not a regular file \(a FIFO\)"
    member = npy_bytes(header((10**12, 2), fortran=True), data=bytes(64))
    if kind == "fortran-trillion-rows":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("X.npy", member)
        return bad, "member 'X.npy' is truncated: its data needs 14.6 TiB"
    if kind == "deflated-claim":
        write_zip(bad, [("X.npy", deflated(member), 8, 2**32 - 2)])
        return bad, r"member 'X\.npy' is corrupt"
    if kind == "huge-zip-directory":
        write_zip(bad, [("X.npy", b"", zipfile.ZIP_STORED, 0)] * 30_000)
        return bad, r"not a valid NPZ \(zip\) archive \(its directory claims 1\.5 MiB"
    if kind == "object-dtype":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("X.npy", npy_bytes(header((40,), descr="|O"), data=bytes(320)))
        return bad, "member 'X.npy' holds Python objects"
    raise AssertionError(kind)


KINDS = [
    "negative-dimension",
    "symlink-loop",
    "broken-symlink",
    "fifo",
    "fortran-trillion-rows",
    "deflated-claim",
    "huge-zip-directory",
    "object-dtype",
]


@pytest.mark.parametrize("kind", KINDS)
def test_demo_names_the_hostile_file_in_one_line(tmp_path, capsys, kind):
    bad, reason = hostile_corpus(kind, tmp_path)
    assert main(["demo", "--data", str(tmp_path), "--batches", "2", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert re.match(rf"pescador demo: error: {re.escape(str(bad))}: {reason}", line), line


@pytest.mark.parametrize(
    "shape, reason",
    [((-1, 3), "is not a valid NPY array (shape (-1, 3)"), ((9, 3), "is truncated")],
    ids=["negative", "truncated"],
)
def test_demo_on_hostile_npy_files(tmp_path, capsys, shape, reason):
    np.save(tmp_path / "a.X.npy", np.zeros((40, 3)))
    bad = write_npy(tmp_path / "b.X.npy", header(shape))
    assert main(["demo", "--data", str(tmp_path), "--batches", "2", "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"pescador demo: error: {bad}: the file {reason}")


@needs_permissions
def test_demo_on_a_symlink_loop_or_an_unreadable_directory(tmp_path, capsys, shared_dir):
    loop = tmp_path / "loop"
    os.symlink(loop.name, loop)
    assert main(["demo", "--data", str(loop)]) == 2
    assert one_error_line(capsys) == (
        f"pescador demo: error: --data {loop}: Too many levels of symbolic links"
    )
    locked = shared_dir / "locked"
    locked.mkdir()
    a_good_npz(locked)
    os.chmod(locked, 0)

    def demo() -> str:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = main(["demo", "--data", str(locked)])
        return f"{status} {err.getvalue()}"

    assert unprivileged(demo) == f"2 pescador demo: error: --data {locked}: Permission denied\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_python_m_pescador_demo_does_not_wait_on_a_fifo(tmp_path):
    a_good_npz(tmp_path)
    os.mkfifo(tmp_path / "pipe.npz")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pescador", "demo", "--data", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=25,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"pescador demo: error: {tmp_path / 'pipe.npz'}: not a regular file (a FIFO)"
    ]
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.npz").st_mode)  # untouched
