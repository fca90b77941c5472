"""app.json: what review apps and the Deploy button read, checked against the Dev Center's schema and the project."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

import localstack
from app.config import Settings
from app.migrations.history import PROJECT_ROOT
from devtools.project import POSTGRES_MAJOR

MANIFEST = json.loads((PROJECT_ROOT / "app.json").read_text())

# The Dev Center's "app.json Schema": every top-level key and its type (all optional).
SCHEMA_KEYS = {
    "name": str, "description": str, "keywords": list, "website": str, "repository": str, "logo": str,
    "success_url": str, "scripts": dict, "env": dict, "formation": dict, "image": str, "addons": list,
    "buildpacks": list, "environments": dict, "stack": str,
}  # fmt: skip
ENV_KEYS = {"description": str, "value": str, "required": bool, "generator": str}


def test_every_key_and_type_is_one_the_dev_center_documents():
    assert MANIFEST, "app.json is an object"
    for key, value in MANIFEST.items():
        assert key in SCHEMA_KEYS, f"{key} is not an app.json key"
        assert isinstance(value, SCHEMA_KEYS[key]), f"{key} must be a {SCHEMA_KEYS[key].__name__}"
    assert all(isinstance(word, str) for word in MANIFEST.get("keywords", []))
    for name, spec in MANIFEST.get("env", {}).items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
        assert isinstance(spec, str) or set(spec) <= set(ENV_KEYS), name
        assert isinstance(spec, str) or all(isinstance(spec[k], ENV_KEYS[k]) for k in spec), name
        assert isinstance(spec, str) or spec.get("generator", "secret") == "secret", "the only generator is secret"
    for process, scale in MANIFEST.get("formation", {}).items():
        assert isinstance(scale.get("quantity", 1), int) and isinstance(scale.get("size", ""), str), process
    for addon in MANIFEST.get("addons", []):
        assert isinstance(addon, str) or (
            isinstance(addon.get("plan"), str) and set(addon) <= {"plan", "as", "options"}
        )
    assert set(MANIFEST.get("environments", {})) <= {"test", "review"}
    for manifest in (MANIFEST, *MANIFEST.get("environments", {}).values()):
        assert set(manifest.get("scripts", {})) <= {"postdeploy", "pr-predestroy"}


def test_it_agrees_with_the_procfile_heroku_yml_and_the_postgres_major():
    heroku_yml = yaml.safe_load((PROJECT_ROOT / "heroku.yml").read_text())
    assert MANIFEST["stack"] == "container", "heroku.yml builds the image: the container stack"
    assert set(MANIFEST["formation"]) <= set(localstack.procfile()) & set(heroku_yml["run"]), (
        "formation names process types"
    )
    sizes = set(re.findall(r"^DYNO_MEMORY_([\w-]+) :=", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE))
    assert {scale["size"].lower() for scale in MANIFEST["formation"].values()} <= sizes, "a size make knows"
    [postgres] = [
        a for a in MANIFEST["addons"] if (a if isinstance(a, str) else a["plan"]).startswith("heroku-postgresql")
    ]
    [declared] = heroku_yml["setup"]["addons"]
    assert postgres["options"]["version"] == declared["options"]["version"] == POSTGRES_MAJOR


def test_its_config_vars_are_settings_and_secret_key_is_generated():
    settings = {f.metadata["env"] for f in Settings.__dataclass_fields__.values() if f.metadata["env"]}
    assert set(MANIFEST["env"]) <= settings, "every config var is one the app reads (app/config.py)"
    assert MANIFEST["env"]["SECRET_KEY"]["generator"] == "secret", "web refuses to start without it"


def test_only_review_apps_get_the_demo_accounts_and_with_a_command_the_image_has():
    """A Deploy button makes a real app: no accounts with a password printed in the README."""
    assert "postdeploy" not in MANIFEST.get("scripts", {})
    command = MANIFEST["environments"]["review"]["scripts"]["postdeploy"].split()
    assert command[:3] == ["python", "-m", "app.migrations"]
    shown = subprocess.run([sys.executable, *command[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
