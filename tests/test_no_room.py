"""``/dev/shm`` without room: no free inode at all (not even for the private directory), room
for the directory but not its files, or no free space. Both streamers deliver every item
another way (pickled through the pipe, frames on the socket), and leave nothing behind.

Each case runs in a private mount namespace (``unshare -m``) with a small tmpfs on
``/dev/shm``, which needs root (as in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest


def _namespaces() -> str | None:
    """Why private mount namespaces cannot be used here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "Linux only"
    if os.geteuid() != 0:
        return "needs root for a private mount namespace (unshare -m)"
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"unshare -m fails here: {probe.stderr.decode(errors='replace').strip()}"
    return None


_WHY_NOT = _namespaces()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")

BODY = textwrap.dedent(
    """
    import os
    import numpy as np
    import pescador
    from pescador.zmq_stream import ZMQStreamer

    def items(n):
        for j in range(n):
            yield {"x": np.full(1 << 14, j, np.int64)}  # 128 KiB: meant for shared memory

    def values(stream):
        return [int(d["x"][-1]) for d in stream]

    assert values(pescador.ParallelStreamer(pescador.Streamer(items, 6), 1)) == list(range(6))
    unordered = pescador.ParallelStreamer(pescador.Streamer(items, 3), 2, ordered=False)
    assert sorted(values(unordered)) == [0, 0, 1, 1, 2, 2]
    for transport in ("tcp", "ipc"):
        zs = ZMQStreamer(pescador.Streamer(items, 6), transport=transport)
        assert values(zs) == list(range(6))
    assert os.listdir("/dev/shm") == [], os.listdir("/dev/shm")
    print("ok")
    """
)


@pytest.mark.parametrize(
    "tmpfs",
    [
        pytest.param("size=64m,nr_inodes=1", id="no-free-inode"),
        pytest.param("size=64m,nr_inodes=2", id="room-for-the-directory-only"),
        pytest.param("size=64m,nr_inodes=4", id="room-for-the-directory-and-socket"),
        pytest.param("size=8k", id="no-free-space"),
    ],
)
def test_every_item_arrives_another_way(tmpfs):
    pytest.importorskip("zmq")
    script = f'mount -t tmpfs -o {tmpfs} tmpfs /dev/shm && exec {sys.executable} -c "$BODY"'
    env = dict(os.environ, BODY=BODY, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
