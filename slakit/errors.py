"""Errors that the command line prints as one line, without a traceback."""


class SlakitError(Exception):
    """A problem the user can fix; `str(err)` says what and where.

    `exit_code` follows the project's convention: 1 a gate failed, 2 bad input or
    configuration, 3 a measurement that cannot be trusted, 4 an internal error (a bug:
    the SLA command line gives any unexpected exception this code).
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class GateFailed(SlakitError):
    exit_code = 1
