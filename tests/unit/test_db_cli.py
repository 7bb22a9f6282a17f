"""`harden db` on the command line: exit codes and messages that need no registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardening.cli import main
from tests.registry.server import free_port
from tests.unit.test_db_sources import export, go_record


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out + err


def test_pull_tries_each_repository_in_order_then_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (f"127.0.0.1:{free_port()}/mirror/trivy-db:2" for _ in range(2))
    monkeypatch.setenv("HARDENING_DB_REPOSITORIES", f"{first} {second}")
    code, output = run(["db", "pull", "--cache-dir", str(tmp_path)], capsys)
    assert code == 3, output
    assert output.index(f"{first}: unreachable") < output.index(f"{second}: unreachable")
    assert "no repository served a valid Trivy DB (2 tried)" in output
    assert "there is no previous DB in the cache" in output
    assert list(tmp_path.iterdir()) == []


def test_push_and_show_without_a_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run(["db", "push", "127.0.0.1:5000/x/trivy-db:2", "--cache-dir", str(tmp_path)], capsys)
    assert code == 3 and "no vulnerability DB" in output and "harden db pull" in output
    code, output = run(["db", "show", "--cache-dir", str(tmp_path)], capsys)
    assert code == 3 and "no vulnerability DB" in output


def test_build_prints_what_it_left_out_and_show_what_the_db_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [go_record("GO-2024-0001"), go_record("GO-2024-0002", "toolchain", aliases=[])]
    zipped = export(tmp_path / "Go.zip", *records)
    code, output = run(["db", "build", str(zipped), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, output
    assert "from 1 advisories" in output
    assert "1 only for packages Trivy does not look up" in output
    code, output = run(["db", "show", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, output
    assert "source:      built" in output
    assert f"contains:    1 OSV records from {zipped}" in output
    assert json.loads((tmp_path / "cache" / "db" / "metadata.json").read_text())["Version"] == 2


@pytest.mark.parametrize(
    ("host", "plain"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.10", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("mirror.gcr.io:443", False),
        ("10.0.0.5:5000", False),
    ],
)
def test_plain_http_only_to_this_machine(host: str, plain: bool) -> None:
    from hardening.db.registry import _is_loopback

    assert _is_loopback(host) is plain
