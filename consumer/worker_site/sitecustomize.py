"""Spark's Python processes import pyspark compiled, not from the zip Spark puts first.

Spark starts each Python process (the data source's lookup, create and plan workers, the
streaming source runner, the feature stage's workers) with ``pyspark.zip`` and py4j's
source zip first on ``PYTHONPATH``. Python compiles what it imports from a zip every time
and never caches it: pyspark's daemon and worker imports took 0.76 CPU s that way on an
AMD EPYC, against 0.14 s compiled, in each of the 8 or so such processes of a consumer run.

This folder is on the ``PYTHONPATH`` of those processes only (:mod:`consumer.spark`), so
Python runs this file at start-up. It drops the zips when they are the ones the installed
pyspark package itself ships (``<site-packages>/pyspark/python/lib``, pip's layout) and
that ``<site-packages>`` is on the path, so the same code is imported compiled. py4j's zip
goes only if the installed py4j has the zip's version. A Spark distribution's
``SPARK_HOME`` keeps its zips. Any other ``sitecustomize`` on the path runs afterwards,
as it would have without this one.

Only the standard library is imported here: this runs before anything else.
"""
import os
import sys


def installed_package_zips(path):
    """The entries of ``path`` that are zips shipped inside an importable pyspark package."""
    entries = {os.path.abspath(p) for p in path if p}
    found = []
    for entry in path:
        if not entry or not entry.endswith(".zip"):
            continue
        lib = os.path.dirname(os.path.abspath(entry))
        package = os.path.dirname(os.path.dirname(lib))
        if (os.path.basename(lib) != "lib" or os.path.basename(os.path.dirname(lib)) != "python"
                or os.path.basename(package) != "pyspark" or os.path.dirname(package) not in entries
                or not os.path.isfile(os.path.join(package, "__init__.py"))):
            continue
        name = os.path.basename(entry)
        if name == "pyspark.zip" or _installed_py4j_zip(name, os.path.dirname(package)):
            found.append(entry)
    return found


def _installed_py4j_zip(name, site_packages):
    """Whether ``name`` is py4j's source zip at the version installed in ``site_packages``.

    Read from pip's ``py4j-<version>.dist-info`` folder: importing ``importlib.metadata``
    to ask would cost each process more than the zip's import it saves.
    """
    if not (name.startswith("py4j-") and name.endswith("-src.zip")):
        return False
    version = name[len("py4j-"):-len("-src.zip")]
    return os.path.isdir(os.path.join(site_packages, f"py4j-{version}.dist-info"))


def _run_next_sitecustomize():
    """Run the ``sitecustomize`` this one shadows, if any (e.g. a distribution's)."""
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if p and os.path.abspath(p) != here]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


def _main():
    zips = set(installed_package_zips(sys.path))
    if zips:
        sys.path[:] = [p for p in sys.path if p not in zips]
    _run_next_sitecustomize()


_main()
