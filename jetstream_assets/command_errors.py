"""How a CLI command ends when it cannot finish: one line on stderr and an exit code, the traceback
only with `--verbose`."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

from jetstream_assets.console import one_line
from jetstream_assets.stop_signals import Stopped, stop_on_signals


def _say(line: str) -> None:
    print(f"jetstream-assets: {line}", file=sys.stderr, flush=True)


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
        _say(f"{one_line(str(e)) or type(e).__name__}{hint}")
        return 1
