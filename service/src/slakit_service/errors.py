"""Every error leaves as JSON `{"error": <code>, "detail": <message>}`, never a traceback."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("slakit_service")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def error_response(
    status: int, code: str, detail: object, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _validation_detail(err: RequestValidationError) -> tuple[int, str, list[dict]]:
    problems = []
    malformed = False
    for item in err.errors():
        if item.get("type") == "json_invalid":
            malformed = True
        problems.append(
            {
                "location": [str(part) for part in item.get("loc", ())],
                "message": str(item.get("msg", "invalid")),
                "type": str(item.get("type", "")),
            }
        )
    if malformed:
        return 400, "malformed_json", problems
    return 422, "invalid_request", problems


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.code, err.detail, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        status, code, problems = _validation_detail(err)
        return error_response(status, code, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(err.status_code, "http_error")
        return error_response(err.status_code, code, str(err.detail), err.headers)

    @app.exception_handler(json.JSONDecodeError)
    async def bad_json(_: Request, err: json.JSONDecodeError) -> JSONResponse:
        return error_response(400, "malformed_json", str(err))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the service log")
