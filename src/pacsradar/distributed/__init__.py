"""Scale-out on Dask: ``--workers N`` (a LocalCluster) or ``--scheduler tcp://HOST:PORT``.

Importing this package does not import Dask: ``distributed`` is imported only when a scan
asks for a cluster (``cluster.open_cluster``), so a plain scan's start-up does not grow.

* ``space``: the scope's endpoint space, cut into small, deterministic, hash-interleaved shards.
* ``plan``: the picklable plan a worker gets, and the compact results it returns.
* ``worker``: the Dask task (one asyncio runtime per worker process, shared by its shards).
* ``cluster``: the client (lazy submission, one writer, exactly-once results, Ctrl-C).
* ``frontend``: what ``pacsradar scan``/``monitor`` call (progress view, error lines).
"""
