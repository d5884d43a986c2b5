"""`openapi.yaml` is generated from the app; a test fails when the committed copy drifts."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.config import Settings
from app.main import create_app

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


def render() -> str:
    schema = create_app(Settings()).openapi()
    return yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100)


def write(path: Path = SPEC_PATH) -> None:
    path.write_text(render())
