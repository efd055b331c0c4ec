"""The consumer's layering: executors import no OpenCV or server code, and no call climbs up."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSUMER = ROOT / "consumer"

#: For each package, the consumer packages/modules it must never import (they sit above it).
FORBIDDEN = {
    "stream": ("consumer.learn", "consumer.evaluate", "consumer.commands", "consumer.cli", "consumer.preflight"),
    "features": ("consumer.stream", "consumer.learn", "consumer.evaluate", "consumer.commands", "consumer.cli"),
    "learn": ("consumer.commands", "consumer.cli", "consumer.preflight"),
    "evaluate": ("consumer.commands", "consumer.cli", "consumer.preflight"),
}


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_climbs_up_a_layer(package):
    bad = []
    for path in sorted((CONSUMER / package).glob("*.py")):
        for name in _imports(path, f"consumer.{package}.{path.stem}"):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in CONSUMER.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 420}
    assert not big, f"modules over ~400 lines: {big}"


def test_decoding_a_frame_in_an_executor_imports_no_opencv_or_server():
    code = """
import sys
from producer import wire
import consumer.stream.reader, consumer.features.stage
import numpy as np
frame = wire.encode(wire.batch(seq=0, epoch=0, ids=["a"], labels=[0], pixels=np.zeros((1, 4, 4, 1), np.uint8)))
msg = wire.decode(frame[4:])
assert wire.batch_pixels(msg).shape == (1, 4, 4, 1)
loaded = [m for m in ("cv2", "producer.server", "producer.imaging", "producer.stream", "producer.batch", "uvloop") if m in sys.modules]
print(",".join(loaded))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"executor path imported {out.stdout.strip()}"
