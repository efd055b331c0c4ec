"""Ship chestct's own code to cluster executors as a ``spark.archives`` tarball.

Executors on other hosts must import ``consumer`` (the source's reader, the feature stage),
``producer.wire`` (the frame codec) and ``featrs`` (with its compiled extension). The
driver packs the packages it runs, exactly as installed (the featrs extension included),
into ``chestct-code.tar.gz``; Spark copies it to every executor and unpacks it into the
executor's working directory as ``chestct-code/``, which goes first on the Python workers'
``PYTHONPATH``. The workers' interpreter needs only the third-party packages (numpy,
pyarrow, pandas, scikit-learn, scikit-image, OpenCV for SIFT), and the same platform as
the driver for the featrs extension. See docs/deployment.md.
"""
from __future__ import annotations

import hashlib
import importlib
import tarfile
import tempfile
from pathlib import Path

#: Packages the executors import.
PACKAGES = ("consumer", "producer", "featrs")
#: The folder name the archive is unpacked as (``spark.archives`` ``#`` alias).
ALIAS = "chestct-code"
_SKIP_DIRS = {"__pycache__", "src", "target", "fuzz"}


def package_dirs() -> list[Path]:
    """The folders of the installed packages, as this interpreter imports them."""
    dirs = []
    for name in PACKAGES:
        module = importlib.import_module(name)
        dirs.append(Path(module.__file__).resolve().parent)
    return dirs


def _members(root: Path):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts[:-1]) or path.name in _SKIP_DIRS:
            continue
        if path.is_file() and path.suffix not in (".pyc", ".rs", ".toml", ".lock"):
            yield path


def build(dest: str | Path | None = None) -> Path:
    """Write the code archive (named by its content hash, so executors never run stale code).

    Returns
    -------
    Path
        ``<dest>/chestct-code-<hash>.tar.gz`` (``dest`` defaults to a temporary folder).
    """
    files = [(d.name, d, p) for d in package_dirs() for p in _members(d)]
    digest = hashlib.sha256()
    for package, root, path in files:
        digest.update(f"{package}/{path.relative_to(root).as_posix()}".encode())
        digest.update(path.read_bytes())
    folder = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="chestct-code-"))
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{ALIAS}-{digest.hexdigest()[:12]}.tar.gz"
    if not archive.exists():
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for package, root, path in files:
                tar.add(path, arcname=f"{package}/{path.relative_to(root).as_posix()}", recursive=False)
        partial.replace(archive)
    return archive
