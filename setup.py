"""twisted-pyro: Pyro4 and Twisted, working together."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="twisted-pyro",
    version="0.1.0",
    description="Serve and call Pyro4 objects from a Twisted reactor",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # twisted/plugins/pyro_plugins.py (twistd pyro-serve, twistd pyro-ns) goes into Twisted's
    # plugin directory, as Twisted's plugin documentation shows: "twisted.plugins" has no
    # __init__.py of ours (Twisted's own is the package), so the file is package data.
    packages=find_packages(include=["pyro", "pyro.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/pyro_plugins.py"], "pyro": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=[
        "Twisted>=22.10",
        "Pyro4==4.82",
        "serpent>=1.41",
    ],
    extras_require={
        "tls": ["pyOpenSSL", "service_identity"],
        "pyro5": ["Pyro5>=5.15"],
        "test": [
            "Pyro5>=5.15",
            "pytest>=7",
            "hypothesis>=6",
            "pyOpenSSL",
            "service_identity",
            "cryptography",
            "msgpack",
            "dill",
            # tests/test_packaging.py runs setup.py itself; venv gives no setuptools from 3.12 on
            "setuptools>=61",
            # the asyncio tests run on uvloop's loop too, where it has wheels (skipped without)
            "uvloop; sys_platform != 'win32' and platform_python_implementation == 'CPython'"
            " and python_version < '3.14'",
        ],
        "lint": ["ruff", "mypy", "mypy-zope"],
        "docs": ["sphinx"],
    },
    entry_points={"console_scripts": ["twisted-pyro = pyro.cli:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
)
