"""bin/localstack.py: .env read as Compose reads it, and written so that nothing in it is ever lost."""

from __future__ import annotations

import pytest

import localstack


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    monkeypatch.setattr(localstack, "ENV_FILE", tmp_path / ".env")
    for name in ("A", "B", "C", "D", "E"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / ".env"


def test_values_are_read_as_compose_reads_them(env_file):
    env_file.write_text("A=\"3\"\nB=2 # two\nC='x y'\nD=plain\nE=\n")
    assert [localstack.read_env(name, "default") for name in "ABCDE"] == ["3", "2", "x y", "plain", "default"]


def test_a_setting_written_replaces_its_line_keeps_the_rest_and_follows_a_symlink(env_file, tmp_path):
    real = tmp_path / "secrets.env"
    real.write_text("SECRET_KEY=kept\nWEB_SCALE=1\n")
    env_file.symlink_to(real)
    localstack.write_env("WEB_SCALE", "3")
    assert env_file.is_symlink(), "the user's link stays a link"
    assert real.read_text() == "SECRET_KEY=kept\nWEB_SCALE=3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "secrets.env"], "no copy left behind"
