"""The ASGI application: `slakit_service.app:app` (gunicorn with uvicorn workers, or uvicorn)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from . import errors, precomputed
from .config import ConfigError, Settings
from .drill import with_delay
from .fastpath import FastPath
from .health import Health
from .limits import BodyLimit
from .routes import build_router
from .service import Service


def create_app(settings: Settings | None = None) -> Any:
    service = Service(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    docs = service.settings.openapi_docs  # off unless SLAKIT_OPENAPI_DOCS=1
    api = FastAPI(
        title="slakit-service",
        version=service.version,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    errors.install(api)
    health = Health(service)
    build_router(service, api.router, health)
    api.state.service = service
    limited = BodyLimit(api, service.settings.max_body_bytes)
    answers = precomputed.answers(service, health)
    outer = FastPath(limited, service.l0, service.stats, service.settings.l0_fastpath, answers)
    served = with_delay(outer, service.settings.drill_delay_ms)  # drills only; 0 = outer
    served.service = service
    return served


def _log_to_stderr_unless_configured() -> None:
    logger = logging.getLogger("slakit_service")
    logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s")
        )
        logger.addHandler(handler)


def _refuse_to_start(problem: ConfigError) -> BaseException:
    """One line, then stop. Under gunicorn an AppImportError: the worker prints the line and
    exits 4, and the master halts ("App failed to load.") instead of respawning the worker
    forever; elsewhere (uvicorn, an import) SystemExit prints the line and exits 1."""
    line = f"slakit-service: configuration error: {problem}"
    if "gunicorn.arbiter" in sys.modules:
        from gunicorn.errors import AppImportError

        return AppImportError(line)
    return SystemExit(line)


_log_to_stderr_unless_configured()
try:
    app = create_app()
except ConfigError as problem:
    raise _refuse_to_start(problem) from None
