"""ASGI entry point for process managers: ``uvicorn --factory api.asgi:create``."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from core.runtime import get_runtime


def create() -> FastAPI:
    return create_app(get_runtime())
