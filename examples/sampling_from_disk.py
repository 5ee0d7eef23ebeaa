"""Sampling from disk: the seed document, runnable.

Run it from anywhere with ``python examples/sampling_from_disk.py``.

Between the ``BEGIN``/``END`` markers is the code of the document "Sampling from disk"
(``shared/seeds/sampling-from-disk.txt``), verbatim, its prose left out.
``tests/test_seeds.py`` runs that block as it stands and checks that its lines appear, in order,
in the document. Two lines are added, each because the document's code cannot run without it:

* the docstring of ``sample_npz`` is never closed in the document; the line ``'''`` after
  "Each iterate has `n > 0` rows." closes it;
* the document's ``for batch in mux_stream(max_iter=1000):`` has no body; ``pass`` is added.

The document's code uses three names it does not define: the file lists ``npz_files``,
``npy_x_files`` and ``npy_y_files``. They are the only input: before the block, this script
writes small synthetic archives into a temporary directory and lists them under those names.
After the block, it draws from both muxes and checks every batch: its shapes, and that its rows
are ``n`` contiguous rows of one of the files.

Note that the document's ``np.random.randint(n_total - n)`` needs files longer than ``n`` rows
(it raises ``ValueError`` when ``n_total == n``), and never picks the last possible window.
"""
# ruff: noqa: E402, I001, B007, B905

import atexit
import os
import shutil
import tempfile

import numpy

N_FILES = 5
FEATURES = 4
WORKDIR = tempfile.mkdtemp(prefix="pescador-sampling-example-")
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)


def synthetic_data(file_number, rows):
    """X rows are ``1000 * file_number + row`` (in every column); Y is the same, as ints."""
    row_ids = 1000 * file_number + numpy.arange(rows)
    X = numpy.repeat(row_ids[:, None], FEATURES, axis=1).astype(numpy.float32)
    return X, row_ids.astype(numpy.int64)


npz_files, npy_x_files, npy_y_files = [], [], []
for number in range(N_FILES):
    X, Y = synthetic_data(number, rows=40 + 10 * number)
    base = os.path.join(WORKDIR, f"song{number}")
    numpy.savez(base + ".npz", X=X, Y=Y)
    numpy.save(base + "_X.npy", X)
    numpy.save(base + "_Y.npy", Y)
    npz_files.append(base + ".npz")
    npy_x_files.append(base + "_X.npy")
    npy_y_files.append(base + "_Y.npy")

# fmt: off
# ---- BEGIN verbatim: seeds/sampling-from-disk.txt ----
import numpy as np
import pescador

def sample_npz(npz_file, n):
    '''Generate an infinite sequence of contiguous samples
    from the input `npz_file`.

    Each iterate has `n > 0` rows.
    '''
    with np.load(npz_file) as data:
        # How many rows are in the data?
        # We assume that data['Y'] has the same length
        n_total = len(data['X'])

        while True:
            # Compute the index offset
            idx = np.random.randint(n_total - n)
            yield dict(X=data['X'][idx:idx + n],
                       Y=data['Y'][idx:idx + n])

n = 16
streams = [pescador.Streamer(sample_npz, npz_f, n) for npz_f in npz_files]

# Keep 32 streams alive at once
# Draw on average 16 patches from each stream before deactivating
mux_stream = pescador.StochasticMux(streams, n_active=32, rate=16)

for batch in mux_stream(max_iter=1000):
    pass

def sample_npz_copy(npz_file, n):
    with np.load(npz_file) as data:
        # How many rows are in the data?
        # We assume that data['Y'] has the same length
        n_total = len(data['X'])

        while True:
            # Compute the index offset
            idx = np.random.randint(n_total - n)
            yield dict(X=data['X'][idx:idx + n].copy(),  # <-- Note the explicit copy
                       Y=data['Y'][idx:idx + n].copy())

def sample_npy_mmap(npy_x, npy_y, n):

    # Open each file in "copy-on-write" mode, so that the files are read-only
    X = np.load(npy_x, mmap_mode='c')
    Y = np.load(npy_y, mmap_mode='c')

    n_total = len(X)

    while True:
        # Compute the index offset
        idx = np.random.randint(n_total - n)
        yield dict(X=X[idx:idx + n],
                   Y=Y[idx:idx + n])

# Using this streamer is similar to the first example, but now you need a separate
# NPY file for each X and Y
streams = [pescador.Streamer(sample_npy_mmap, npy_x, npy_y, n)
           for (npy_x, npy_y) in zip(npy_x_files, npy_y_files)]

# Then construct the `StochasticMux` from the streams, as above
mux_streamer = pescador.StochasticMux(streams, n_active=32, rate=16)
# ---- END verbatim ----
# fmt: on


def check_batch(batch):
    """Check one batch; return the number of the file it came from."""
    assert batch["X"].shape == (n, FEATURES), batch["X"].shape
    assert batch["Y"].shape == (n,), batch["Y"].shape
    file_number, first_row = divmod(int(batch["Y"][0]), 1000)
    X, Y = synthetic_data(file_number, rows=40 + 10 * file_number)
    assert first_row + n < len(X)  # randint(n_total - n) never picks the last window
    assert np.array_equal(batch["X"], X[first_row : first_row + n])
    assert np.array_equal(batch["Y"], Y[first_row : first_row + n])
    return file_number


def main():
    copy_streams = [pescador.Streamer(sample_npz_copy, f, n) for f in npz_files]
    muxes = {
        "sample_npz": mux_stream,
        "sample_npz_copy": pescador.StochasticMux(copy_streams, n_active=32, rate=16),
        "sample_npy_mmap": mux_streamer,
    }
    for name, mux in muxes.items():
        counts = [0] * N_FILES
        for batch in mux(max_iter=1000):
            counts[check_batch(batch)] += 1
        assert sum(counts) == 1000
        print(f"{name:>16}: 1000 batches of {n} rows; batches per file: {counts}")


if __name__ == "__main__":
    main()
