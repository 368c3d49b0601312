"""How a CLI command ends when it cannot finish: one line on stderr and an exit code, the traceback
only with `--verbose`."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

import dagster as dg

from jetstream_assets.console import one_line
from jetstream_assets.stop_signals import Stopped, stop_on_signals


def _say(line: str) -> None:
    print(f"jetstream-assets: {line}", file=sys.stderr, flush=True)


def describe(error: Exception) -> str:
    """One line naming what could not be used: the setting, the file, the credentials."""
    # google.auth is imported only by the BigQuery engine: if it is not loaded, no error can be its
    auth_errors = sys.modules.get("google.auth.exceptions")
    if auth_errors is not None and isinstance(error, auth_errors.GoogleAuthError):
        cause = error.args[-1] if error.args and isinstance(error.args[-1], Exception) else error
        setting = "JETSTREAM_GCP_CREDENTIALS" if os.environ.get("JETSTREAM_GCP_CREDENTIALS") else (
            "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud)")
        return f"Google Cloud credentials from {setting} cannot be used: {one_line(str(cause))}"
    if isinstance(error, OSError) and error.filename:
        return f"cannot read {error.filename}: {error.strerror or error}"
    if isinstance(error, dg.Failure) and error.description:
        return one_line(error.description)
    return one_line(str(error)) or type(error).__name__


def exit_code_of(command: Callable[[], int], *, verbose: bool) -> int:
    """Run the command with SIGINT/SIGTERM stopping it: 128 + the signal number when stopped, 1 for an
    error that ended it (a setting, file or credential it could not use), else the command's own code."""
    try:
        with stop_on_signals():
            return command()
    except Stopped as e:
        _say(e.describe())
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - every error ends the same way: one line, details on request
        if verbose:
            traceback.print_exc()
        hint = "" if verbose else " (run with --verbose for the traceback)"
        _say(f"{describe(e)}{hint}")
        return 1
