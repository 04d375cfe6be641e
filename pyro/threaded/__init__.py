"""The thread-backed client role: Pyro4's (or Pyro5's) blocking proxies in worker threads,
results as Deferreds. Public names are in :mod:`pyro.proxy`.

- :mod:`~pyro.threaded.service`: :class:`PyroDeferredService` and its item streams, batches.
- :mod:`~pyro.threaded.workers`: the worker threads, their queue and hand-back.
- :mod:`~pyro.threaded.workerconnection`: Pyro4's socket connection with fewer syscalls.
- :mod:`~pyro.threaded.generations`: what differs between a wrapped Pyro4 and Pyro5 proxy.
- :mod:`~pyro.threaded.patient`: :class:`PyroPatientProxy`, which waits for its server.
"""
