"""twistd plugins of twisted-pyro: ``twistd pyro-serve ...`` and ``twistd pyro-ns ...``.

Installed into Twisted's ``twisted/plugins`` directory with the package. Kept tiny on
purpose: Twisted imports every plugin module when it lists them (``twistd --help``), and
``ServiceMaker`` imports :mod:`pyro.cli.tap` only when one of these is used.
"""

from twisted.application.service import ServiceMaker

pyro_serve = ServiceMaker(
    "twisted-pyro serve", "pyro.cli.tap.serve",
    "Serve Pyro4 objects to Pyro4 clients (SPEC... --listen ENDPOINT --ns ...)", "pyro-serve")

pyro_ns = ServiceMaker(
    "twisted-pyro name server", "pyro.cli.tap.ns",
    "A Pyro4 name server, as python -m Pyro4.naming (-n HOST -p PORT -s STORAGE ...)",
    "pyro-ns")
