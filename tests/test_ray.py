"""pescador.ray.RayStreamer on a simulated two-node Ray cluster bound to 127.0.0.1 (the root
``conftest.py`` sets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ray is imported: without
it Ray listens on every interface; the listener test checks).

One cluster serves the whole module (starting one costs seconds): a head node and a second
node, both on 127.0.0.1 with the dashboard off and a small object store; the node-removal test
adds a third node and removes it. The teardown shuts everything down, and checks that no Ray
process is left.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import pescador
from pescador import Streamer, WorkerError
from pescador.exceptions import PescadorError, StateError

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from ray_helpers import arrays, draws, failing, letters, sleepy, whereami  # noqa: E402

from pescador.ray import RayStreamer  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LENGTHS = (5, 0, 9, 3, 20, 1, 7)
NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 80 << 20}


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node on 127.0.0.1, and this process connected as the driver."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the Ray tests check processes and sockets through /proc and ss (Linux)")
    earlier = _descendants(os.getpid())  # (processes of other tests: a fork server...)
    # ray.init installs a SIGTERM handler in the driver and leaves it after ray.shutdown;
    # processes forked later (ParallelStreamer's workers) would inherit it.
    sigterm = signal.getsignal(signal.SIGTERM)
    saved = os.environ.get("PYTHONPATH")
    # The actors (processes of the nodes, which inherit this environment) import the sources.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), str(REPO), saved) if p)
    temp = tempfile.mkdtemp(prefix="rayp")
    head = {"num_cpus": 2, "include_dashboard": False, "temp_dir": temp, **NODE}
    nodes = Cluster(initialize_head=True, head_node_args=head)
    try:
        nodes.add_node(num_cpus=2, **NODE)
        ray.init(address=nodes.address, log_to_driver=False)
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        signal.signal(signal.SIGTERM, sigterm)
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
        deadline = time.monotonic() + 10
        while (left := _descendants(os.getpid()) - earlier) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes left behind: {sorted(left)}"


def finite_streams():
    return [Streamer(letters, c, n) for c, n in zip("abcdefg", LENGTHS, strict=True)]


def random_mux(seed=3, weights=None, k=7):
    streams = [Streamer(draws, c) for c in "abcdefghijklmnop"[:k]]
    return pescador.StochasticMux(streams, 3, 8, weights=weights, random_state=seed)


def roundtrip(state):
    return json.loads(json.dumps(state, allow_nan=False))


# ------------------------------------------------------------------------------ no cluster
def test_import_pescador_imports_no_ray():
    code = "import pescador, sys; assert 'ray' not in sys.modules, 'ray was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert pescador.ray.RayStreamer is RayStreamer
    assert RayStreamer.__module__ == "pescador.ray"


def test_without_ray_the_error_names_the_extra():
    code = "import sys; sys.modules['ray'] = None; import pescador.ray"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'pescador[ray]'" in done.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_actors": 0}, "n_actors=0"),
        ({"items_per_call": 0}, "items_per_call=0"),
        ({"calls_in_flight": True}, "calls_in_flight=True"),
        ({"actor_options": ["num_cpus"]}, "actor_options"),
        ({"actor_options": {"max_restarts": 2}}, "max_restarts=2"),
        ({"stall_timeout": -1}, "stall_timeout"),
    ],
)
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(PescadorError, match=re.escape(message)):
        RayStreamer(pescador.ChainMux(finite_streams()), **kwargs)


def test_split_checks_its_arguments():
    rs = RayStreamer(pescador.ChainMux(finite_streams()), 2)
    with pytest.raises(PescadorError, match="already a part"):
        rs.split(2)[0].split(2)
    with pytest.raises(PescadorError, match="7 streamers that can yield items"):
        rs.split(8)
    with pytest.raises(PescadorError, match="not a ParallelStreamer"):
        RayStreamer(pescador.ParallelStreamer(pescador.ChainMux(finite_streams())))


# ------------------------------------------------------------------------------ the cluster
def test_every_listener_of_the_ray_processes_is_on_loopback(cluster):
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2)")
    ours = _descendants(os.getpid()) | {os.getpid()}  # the nodes' processes, the driver
    table = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    listeners = []
    for line in table.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & ours:
            listeners.append(line.split()[3])
    assert len(listeners) >= 6, f"the nodes' listeners were not found:\n{table}"
    elsewhere = [
        address
        for address in listeners
        if not re.fullmatch(r"(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):\d+", address)
    ]
    assert not elsewhere, f"Ray processes listen beyond 127.0.0.1: {elsewhere}"
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


def test_no_duplicates_and_full_coverage(cluster):
    chain = pescador.ChainMux(finite_streams())
    expected = sorted(chain)
    for n_actors, ordered in [(3, True), (2, False)]:
        rs = RayStreamer(chain, n_actors, ordered=ordered, items_per_call=4)
        assert sorted(rs) == expected


def test_deterministic_and_equal_to_parallel_streamer(cluster):
    mux = random_mux()
    first = list(RayStreamer(mux, 2, items_per_call=8).iterate(max_iter=300))
    again = list(RayStreamer(mux, 2, items_per_call=16, calls_in_flight=1).iterate(max_iter=300))
    assert first == again  # the batching does not change the stream
    assert first == list(pescador.ParallelStreamer(mux, 2).iterate(max_iter=300))
    assert len(set(first)) == len(first)


def _share_counts_fit(seed):
    # With endless streamers no share ends, so each item's actor is an independent draw in
    # proportion to its share's weight: the counts per share are multinomial. Chi-square
    # test at alpha = 1e-4: the false-failure rate is 1e-4 per seed. (The mix within a share
    # is the mux's own, tested with the muxes.)
    from scipy.stats import chisquare

    weights = [1, 2, 3, 4, 5, 6, 7]
    k, n = 3, 6000
    shares = np.array([sum(weights[j::k]) for j in range(k)], float)
    items = RayStreamer(random_mux(seed, weights), k).iterate(max_iter=n)
    share_of = {c: i % k for i, c in enumerate("abcdefg")}
    counts = Counter(share_of[tag] for tag, _, _ in items)
    observed = [counts[j] for j in range(k)]
    assert chisquare(observed, n * shares / shares.sum()).pvalue > 1e-4, observed


def test_the_merge_keeps_the_weights_of_the_shares(cluster):
    _share_counts_fit(seed=0)  # a fixed seed keeps CI deterministic


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 21))
def test_the_merge_keeps_the_weights_of_the_shares_for_many_seeds(cluster, seed):
    _share_counts_fit(seed)


def test_exact_resume_at_every_kind_of_position(cluster):
    # items_per_call=8: 0 is before the first item, 8 ends an answer, 9 is inside one, and
    # the last is the end (a finished iteration's state).
    streams = [Streamer(draws, c, 20) for c in "abcdefg"]
    mux = pescador.StochasticMux(streams, 3, 8, mode="exhaustive", random_state=5)
    rs = RayStreamer(mux, 2, items_per_call=8)
    it = rs.iterate()
    full, states = [], {}
    for k in range(10_000):
        if k in (0, 8, 9):
            states[k] = roundtrip(it.state_dict())
        item = next(it, None)
        if item is None:
            states[k] = roundtrip(it.state_dict())
            break
        full.append(item)
    assert len(full) == len(set(full)) == k > 9
    for k, state in states.items():
        assert full[:k] + list(rs.iterate(state=state)) == full, k


def test_unordered_resume_delivers_each_item_once(cluster):
    chain = pescador.ChainMux(finite_streams())
    rs = RayStreamer(chain, 2, ordered=False, items_per_call=3)
    it = rs.iterate()
    head = [next(it) for _ in range(17)]
    state = roundtrip(it.state_dict())
    del it  # dropping it kills its actors
    assert sorted(head + list(rs.iterate(state=state))) == sorted(chain)


def test_resume_in_a_new_consumer_process(cluster, tmp_path):
    mux = random_mux(seed=8)
    rs = RayStreamer(mux, 2, items_per_call=8)
    full = list(rs.iterate(max_iter=120))
    # Another process (a training job that stopped) runs 45 items and saves its state.
    script = f"""
import json, os, sys
import ray
import pescador
from pescador.ray import RayStreamer
sys.path.insert(0, {str(TESTS)!r})
from test_ray import random_mux
ray.init(address={cluster.address!r}, log_to_driver=False)
it = RayStreamer(random_mux(seed=8), 2, items_per_call=8).iterate(max_iter=120)
head = [next(it) for _ in range(45)]
json.dump({{"head": head, "state": it.state_dict()}}, open(sys.argv[1], "w"))
it.close()
ray.shutdown()
"""
    saved = tmp_path / "checkpoint.json"
    done = subprocess.run(
        [sys.executable, "-c", script, str(saved)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = json.loads(saved.read_text())
    head = [tuple(item) for item in checkpoint["head"]]
    tail = list(rs.iterate(max_iter=120, state=checkpoint["state"]))
    assert head + tail == full


def test_split_gives_disjoint_resumable_parts(cluster):
    chain = pescador.ChainMux(finite_streams())
    parts = RayStreamer(chain, 1, items_per_call=4).split(3)
    outputs = [list(part) for part in parts]
    assert sorted(x for output in outputs for x in output) == sorted(chain)
    assert [p.part for p in parts] == [(0, 3), (1, 3), (2, 3)]
    # Equal lengths: each part cycles its own streamers (those of no other part).
    mux = random_mux(seed=2, weights=[1, 2, 3, 4, 5, 6, 7])
    equal = RayStreamer(mux, 1, items_per_call=8).split(2, length=90)
    runs = [list(part) for part in equal]
    assert [len(run) for run in runs] == [90, 90]
    tags = [{tag for tag, _, _ in run} for run in runs]
    assert not tags[0] & tags[1]
    # A part pickles (to the rank that consumes it) and resumes on its own.
    part = pickle.loads(pickle.dumps(equal[1]))
    it = part.iterate()
    head = [next(it) for _ in range(33)]
    state = roundtrip(it.state_dict())
    it.close()
    assert head + list(part.iterate(state=state)) == runs[1]
    with pytest.raises(StateError, match="part"):
        equal[0].iterate(state=state)
    # Finite shares restart as often as needed to fill the length.
    short = RayStreamer(chain, 1, items_per_call=4).split(2, length=50)
    assert [len(list(p)) for p in short] == [50, 50]


def test_an_exception_in_an_actor_is_reraised_with_its_traceback(cluster):
    mux = pescador.ChainMux([Streamer(failing, 5), Streamer(letters, "x", 3)])
    it = RayStreamer(mux, 2, items_per_call=2).iterate()
    got = []
    with pytest.raises(WorkerError, match="boom in the actor") as info:
        for item in it:
            got.append(item)
    assert info.value.args[0].startswith("actor 0 failed: ValueError")
    assert "in failing" in str(info.value)  # the remote traceback
    assert [x for x in got if isinstance(x, int)] == [0, 1, 2, 3, 4]


def test_a_state_the_actor_cannot_load_is_a_state_error(cluster):
    rs = RayStreamer(random_mux(), 2)
    it = rs.iterate()
    next(it)
    state = roundtrip(it.state_dict())
    it.close()
    state["workers"][0]["state"] = {"kind": "ShuffledMux", "n": 0}
    state = pescador._state.reseal(state)
    with pytest.raises(StateError, match="actor 0"):
        list(rs.iterate(state=state, max_iter=10))


def _pids(items):
    return {pid for _, pid in items}


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pids, seconds=20):
    deadline = time.monotonic() + seconds
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return all(map(_gone, pids))


def test_a_killed_actor_raises_worker_error(cluster):
    mux = pescador.RoundRobinMux([Streamer(whereami, c) for c in "ab"])
    it = RayStreamer(mux, 2, items_per_call=4).iterate()
    pids = _pids(next(it) for _ in range(20))
    assert len(pids) == 2
    os.kill(min(pids), 9)
    with pytest.raises(WorkerError, match=r"actor \d died"):
        for _ in it:
            pass
    assert _wait_gone(pids)  # the error closed the stream: the other actor is killed too


def test_a_removed_node_raises_worker_error(cluster):
    # (Actors that ask for a resource also hold a CPU each: give them two.)
    node = cluster.add_node(num_cpus=2, resources={"doomed": 2}, **NODE)
    mux = pescador.RoundRobinMux([Streamer(whereami, c) for c in "ab"])
    options = {"resources": {"doomed": 1}}
    it = RayStreamer(mux, 2, actor_options=options, items_per_call=4).iterate()
    assert len(_pids(next(it) for _ in range(10))) == 2
    cluster.remove_node(node)
    with pytest.raises(WorkerError, match="died"):
        for _ in it:
            pass


def test_closing_or_dropping_the_stream_kills_its_actors(cluster):
    rs = RayStreamer(Streamer(whereami, "a"), 1)
    for how in ("close", "del", "break"):
        it = rs.iterate()
        pids = _pids(next(it) for _ in range(3))
        if how == "close":
            it.close()
        elif how == "del":
            del it
        else:
            for _ in zip(range(5), it, strict=False):
                pass
            it = None
        assert _wait_gone(pids), how


def test_a_stalled_actor_raises_after_stall_timeout(cluster):
    rs = RayStreamer(Streamer(sleepy, 30), 1, stall_timeout=0.5)
    with pytest.raises(WorkerError, match=r"actor 0 sent nothing for 0.5 s"):
        list(rs)


def test_arrays_arrive_read_only_through_the_object_store(cluster):
    mux = pescador.ChainMux([Streamer(arrays, c, 30, 20_000) for c in "ab"])
    items = list(RayStreamer(mux, 2, items_per_call=8))
    assert sorted((item["tag"], int(item["X"][0])) for item in items) == sorted(
        (c, i) for c in "ab" for i in range(30)
    )
    x = items[0]["X"]
    assert x.dtype == np.int64 and x.shape == (20_000,)
    assert not x.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        x[0] = 1
