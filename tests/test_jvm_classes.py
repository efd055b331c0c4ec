"""The driver JVM's class-data archive: where it is, when it is used, how a failed build reads."""
from __future__ import annotations

import subprocess

import pytest

from consumer import console, jvm_classes


def test_the_archive_is_used_only_when_it_exists_and_not_when_turned_off(tmp_path, monkeypatch):
    archive = tmp_path / "spark.jsa"
    monkeypatch.setenv(jvm_classes.ENV, str(archive))
    monkeypatch.delenv("_CHESTCT_JVM_ARCHIVE_WRITE", raising=False)
    assert jvm_classes.java_option() == ""
    assert "SharedArchiveFile" not in console.java_options("INFO")
    archive.write_bytes(b"any: the JVM checks it and ignores a foreign one")
    assert jvm_classes.java_option() == f"-XX:SharedArchiveFile={archive}"
    assert console.java_options("INFO").endswith(f"-XX:SharedArchiveFile={archive}")
    monkeypatch.setenv(jvm_classes.ENV, "off")
    assert jvm_classes.archive_path() is None and jvm_classes.java_option() == ""
    with pytest.raises(RuntimeError, match="off"):
        jvm_classes.build()


def test_the_default_place_is_beside_the_interpreter_and_names_the_spark_version(monkeypatch):
    import sys

    import pyspark

    monkeypatch.delenv(jvm_classes.ENV, raising=False)
    path = jvm_classes.archive_path()
    assert path.parent.is_relative_to(sys.prefix) and pyspark.__version__ in path.name


def test_a_failed_build_says_why_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "a" / "spark.jsa"
    monkeypatch.setenv(jvm_classes.ENV, str(target))

    def failing(argv, env, **kw):
        assert argv[-1] == "--workload" and env["_CHESTCT_JVM_ARCHIVE_WRITE"].startswith(str(target.parent))
        return subprocess.CompletedProcess(argv, 1, "", "Error: no java on PATH")

    monkeypatch.setattr(jvm_classes.subprocess, "run", failing)
    with pytest.raises(RuntimeError, match="no java on PATH"):
        jvm_classes.build()
    assert list(target.parent.iterdir()) == []
    assert jvm_classes.main([]) == 1
    assert "Spark starts as usual, only slower" in capsys.readouterr().err


def test_the_writing_child_dumps_instead_of_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("_CHESTCT_JVM_ARCHIVE_WRITE", str(tmp_path / "new.jsa"))
    assert jvm_classes.java_option() == f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}"
