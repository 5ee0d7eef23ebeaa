"""Using ChainMux for repeatable streams: the seed document, runnable.

Run it from anywhere with ``python examples/chainmux_repeatable_streams.py``.

Between the ``BEGIN``/``END`` markers is the code of the document "Using ChainMux for
repeatable streams" (``shared/seeds/chainmux-repeatable-streams.txt``), verbatim, its prose left
out; nothing in it is changed. ``tests/test_seeds.py`` runs that block as it stands and checks
that its lines appear, in order, in the document.

The document reads ``file1.npz`` and ``file2.npz`` (arrays ``X`` and ``Y``) from the working
directory, so before the block this script writes small synthetic archives with those names into
a temporary directory and moves there; that is the only input of the document's code. After the
block, it checks what the document promises: the validation stream repeats every ``N*M``
items, and each pass holds the first ``M`` examples of every file, in order.
"""
# ruff: noqa: E402, I001

import atexit
import os
import shutil
import tempfile

import numpy

ROWS = 15  # rows per synthetic archive; the document reads the first M = 10 of each
FEATURES = 3


def write_archive(path, file_number, rows=ROWS):
    """An archive whose X rows are ``100 * file_number + row`` and whose Y is ``file_number``."""
    row_ids = 100 * file_number + numpy.arange(rows)
    X = numpy.repeat(row_ids[:, None], FEATURES, axis=1).astype(numpy.float32)
    Y = numpy.full(rows, file_number)
    numpy.savez(path, X=X, Y=Y)


WORKDIR = tempfile.mkdtemp(prefix="pescador-chainmux-example-")
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
for number, name in enumerate(["file1.npz", "file2.npz"], start=1):
    write_archive(os.path.join(WORKDIR, name), number)
os.chdir(WORKDIR)

# fmt: off
# ---- BEGIN verbatim: seeds/chainmux-repeatable-streams.txt ----
# Imports
import numpy as np
import pescador

val_files = ['file1.npz', 'file2.npz']
N = len(val_files)

M = 10  # or whatever the number of examples per file is

@pescador.streamable
def data_gen(filename, m):

    data = np.load(filename)
    X = data['X']
    Y = data['Y']
    for i in range(m):
        yield dict(X=X[i], y=Y[i])

val_streams = [data_gen(fn, M) for fn in val_files]

val_stream = pescador.ChainMux(val_streams, mode='cycle')
# ---- END verbatim ----
# fmt: on


def main():
    period = N * M
    items = list(val_stream.iterate(max_iter=3 * period))
    first_pass = items[:period]

    # Each pass is the first M examples of each file, in order.
    for position, item in enumerate(first_pass):
        file_number, row = divmod(position, M)
        data = np.load(val_files[file_number])
        assert np.array_equal(item["X"], data["X"][row]), (position, item)
        assert item["y"] == data["Y"][row]

    # The stream repeats every N*M items, and a new iteration starts the same way.
    for k, item in enumerate(items):
        reference = first_pass[k % period]
        assert np.array_equal(item["X"], reference["X"]) and item["y"] == reference["y"]
    again = list(val_stream.iterate(max_iter=period))
    assert all(np.array_equal(a["X"], b["X"]) for a, b in zip(again, first_pass, strict=True))

    print(f"{N} files x {M} examples: the validation stream repeats every {period} items")
    print("first pass, file of each item:", " ".join(str(int(i["y"])) for i in first_pass))
    print("first pass, X[0] of each item:", " ".join(str(int(i["X"][0])) for i in first_pass))


if __name__ == "__main__":
    main()
