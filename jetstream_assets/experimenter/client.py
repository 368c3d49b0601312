"""Fetch Experimenter's v8 experiments list from an http(s) URL, a file:// URL or a JSON file.

Every failure surfaces as one `ExperimenterError` whose message names the source and the reason.
Messages never carry URL credentials or query strings, and the underlying exceptions are not
chained (`from None`) because their text and tracebacks repeat the full URL.

An HTTP fetch, retries included, ends within a wall-clock deadline: `requests`' timeout bounds each
read only, so a server that trickles a byte at a time would otherwise hold the fetch forever.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import requests
import urllib3

USER_AGENT = "jetstream-assets"
DEFAULT_DEADLINE_SECONDS = 120.0
_CHUNK_BYTES = 1 << 16


class ExperimenterError(RuntimeError):
    """The Experimenter payload could not be obtained or is not a JSON array."""


def fetch_experimenter_payload(
    source: str,
    *,
    timeout: float = 30.0,
    attempts: int = 2,
    retry_delay: float = 1.0,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> list[dict[str, Any]]:
    """The JSON array served at `source` (Experimenter's `/api/v8/experiments/` body).

    HTTP sources are retried up to `attempts` times on connection errors, timeouts and 5xx,
    sleeping `retry_delay * attempt` seconds in between; the whole fetch, retries and waits
    included, gives up after `deadline_seconds`. Array elements are not validated here:
    `parse.parse_experiments` reports bad records one by one.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if deadline_seconds <= 0:
        raise ValueError("deadline_seconds must be positive")
    scheme = urlsplit(source).scheme.lower()
    # A one-letter "scheme" is a Windows drive letter, i.e. a plain path.
    if scheme in ("http", "https"):
        where = display_source(source)
        deadline = _Deadline(deadline_seconds)
        body = _get_over_http(
            source, where, timeout=timeout, attempts=attempts, retry_delay=retry_delay, deadline=deadline
        )
    elif scheme == "file":
        where = display_source(source)
        body = _read_file(_file_url_path(source), where)
    elif len(scheme) > 1:
        raise ExperimenterError(
            f"{display_source(source)}: unsupported URL scheme {scheme!r}"
            " (use http, https, file or a path)"
        )
    else:
        where = source
        body = _read_file(Path(source), where)
    return _decode_array(body, where)


def display_source(source: str) -> str:
    """`source` safe for messages and logs: no userinfo, no query string, no fragment."""
    parts = urlsplit(source)
    if not parts.scheme or len(parts.scheme) == 1:
        return source
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Deadline:
    """A monotonic wall-clock limit shared by every attempt of one fetch."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._ends - time.monotonic()


class _DeadlineReached(Exception):
    pass


def _get_over_http(
    url: str, where: str, *, timeout: float, attempts: int, retry_delay: float, deadline: _Deadline
) -> bytes:
    reason = ""
    attempt = 0
    while attempt < attempts and deadline.remaining() > 0:
        attempt += 1
        read_timeout = min(timeout, deadline.remaining())
        try:
            with requests.get(
                url, timeout=read_timeout, headers={"User-Agent": USER_AGENT}, stream=True
            ) as response:
                if response.status_code < 400:
                    return _read_body(response, deadline, per_read=timeout)
                reason = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
                if response.status_code < 500:
                    raise ExperimenterError(f"{where}: {reason}")
        except _DeadlineReached:
            reason = "the body was still arriving"
            break
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            reason = f"timed out after {read_timeout:g}s"
        except (requests.ConnectionError, urllib3.exceptions.ProtocolError):
            # ProtocolError: the connection broke while the body was streaming
            reason = "unreachable (connection failed)"
        except urllib3.exceptions.HTTPError as exc:
            raise ExperimenterError(f"{where}: unreadable response ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            # Malformed URL and the like: retrying cannot help.
            raise ExperimenterError(f"{where}: request failed ({type(exc).__name__})") from None
        if attempt < attempts:
            time.sleep(max(0.0, min(retry_delay * attempt, deadline.remaining())))
    if deadline.remaining() <= 0:
        raise ExperimenterError(
            f"{where}: no complete answer within the {deadline.seconds:g}s deadline"
            f" ({reason}; gave up after {attempt} attempt(s))"
        )
    raise ExperimenterError(f"{where}: {reason} (gave up after {attempt} attempt(s))")


def _read_body(response: requests.Response, deadline: _Deadline, *, per_read: float) -> bytes:
    """The body, read as it arrives; every wait on the socket ends by the deadline."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _DeadlineReached
        connection = response.raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(min(per_read, remaining))
        # read1 returns whatever has arrived, so a trickle cannot hold one call for long
        chunk = response.raw.read1(_CHUNK_BYTES, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _file_url_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ExperimenterError(f"{display_source(url)}: file URLs on remote hosts are unsupported")
    return Path(url2pathname(unquote(parts.path)))


def _read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ExperimenterError(f"{where}: file not found") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExperimenterError(f"{where}: cannot read file ({reason})") from None


def _decode_array(body: bytes, where: str) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExperimenterError(f"{where}: response is not JSON ({exc})") from None
    if not isinstance(payload, list):
        raise ExperimenterError(
            f"{where}: expected a JSON array of experiments, got a JSON {_json_kind(payload)}"
        )
    return payload


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
