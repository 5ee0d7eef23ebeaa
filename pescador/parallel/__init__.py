"""Run a stream in worker processes and merge their output in the consumer.

:class:`ParallelStreamer` is a :class:`~pescador.core.Streamer`: each iteration starts
``n_workers`` processes, each running a share of the stream, and merges what they produce.

- **Splitting.** The outermost mux of the pipeline (a mux itself, or the mux inside
  ``Streamer(buffer_stream, mux, 32)``, say) is split across the workers: worker ``w`` runs the
  streamers ``w, w + k, w + 2k, ...`` with a seed derived from the iteration's seed, so no item
  is produced twice, and the consumer takes each next item from worker ``w`` with probability
  proportional to the total weight of its share, so the mux's proportions hold. A stream
  without a mux runs whole in every worker; it can call :func:`worker_info` to shard its own
  sources (without that, each worker produces the same items).
- **Transport.** Arrays travel through shared memory (``/dev/shm``): one copy in the worker,
  none in the consumer, no pickling of array data. Received arrays are *writable* views of
  shared memory owned by the consumer: the worker does not reuse an item's chunk until all of
  its arrays are gone, so the consumer may modify them like any array it made. An item that
  finds no room (``shm_limit``) is pickled through the worker's pipe instead.
- **Order.** With ``ordered=True`` (default) the output is deterministic for a fixed seed and
  worker count; ``ordered=False`` takes whatever worker is ready first (faster when workers
  are uneven), and is not reproducible.
- **Bounded.** At most ``prefetch`` items per worker (and about 64 MiB of their arrays) are
  produced and not yet delivered.
- **Exact resume.** The state describes items *delivered* to the consumer: each worker's
  stream state at a recent item, and how many items it delivered since. Items produced but
  not delivered are neither lost nor repeated on resume.
- **Failures.** An exception in a worker is re-raised in the consumer as
  :class:`~pescador.exceptions.WorkerError` with the remote traceback; a worker that dies
  (a signal, ``os._exit``) raises too, and so does one that sends nothing for
  ``stall_timeout`` seconds, if set. ``close()``, the end of the stream, ``break``, ``del``,
  an error or Ctrl-C stop every worker and delete every shared-memory file at once (reference
  counting: no cycle). A consumer killed alone, or with its process group, has its directory
  removed by its workers; if nobody survives, by the next consumer on the machine.
"""

from .._sharding import WorkerInfo, worker_info
from ._consumer import ParallelStreamer

__all__ = ["ParallelStreamer", "WorkerInfo", "worker_info"]

ParallelStreamer.__module__ = __name__  # pickles and reprs name the public module
