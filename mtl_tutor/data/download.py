"""Fetch the public CS224N files into a folder, each verified before it appears under its name.

Each file is streamed (``urllib``) into a temporary file in the destination folder, checked
against its pinned size, git blob id and SHA-256 (:mod:`mtl_tutor.data.public`), and only then
renamed to its final name (``os.replace``: atomic on one file system). A connection dropped
mid-file is retried from the start a bounded number of times; a checksum mismatch, an HTTP error
or an unreachable host stops with a :class:`DownloadError` naming the file, the URL and what was
expected, and leaves no partial file behind. Files already present and verified are skipped.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .public import CHUNK_BYTES, DEFAULT_MIRROR, PublicFile, mismatch, public_files
from .tasks import TASKS


class DownloadError(RuntimeError):
    """A file could not be fetched or did not verify; nothing was left under its name."""


class DroppedConnection(Exception):
    """The connection ended before the whole file arrived (worth another attempt)."""


@dataclass(frozen=True)
class Fetched:
    """What :func:`download` did with one file: "present" (already there and verified) or
    "fetched"."""

    name: str
    path: Path
    status: str


def file_url(mirror: str, name: str) -> str:
    """The URL of ``name`` under ``mirror``: a URL of a folder, or a local folder's path."""
    if "://" not in mirror:
        if not Path(mirror).is_dir():
            raise DownloadError(f"mirror {mirror!r} is neither a URL nor a folder")
        mirror = Path(mirror).resolve().as_uri()
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(name)}"


def stream_to(url: str, out, expected: PublicFile, *, timeout: float, progress: bool) -> None:
    """Write the body at ``url`` into the open binary file ``out`` (truncated first).

    Raises :class:`DroppedConnection` when the connection breaks or closes before
    Content-Length bytes arrived; other errors (HTTP status, unreachable host) propagate.
    """
    out.seek(0)
    out.truncate()
    request = urllib.request.Request(url, headers={"User-Agent": "mtl-tutor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            length = int(length) if length is not None else None
            received = 0
            with tqdm(total=length or expected.size, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=expected.name, disable=not progress,
                      leave=False) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (http.client.IncompleteRead, ConnectionResetError, ConnectionAbortedError,
            TimeoutError) as e:
        raise DroppedConnection(f"{type(e).__name__}: {e}") from e
    if length is not None and received < length:
        raise DroppedConnection(f"the connection closed after {received} of {length} bytes")


def fetch_file(url: str, expected: PublicFile, dest: Path, *, retries: int, retry_wait: float,
               timeout: float, progress: bool) -> Path:
    """Download ``url`` to ``dest / expected.name``, verified; see the module docstring."""
    final = dest / expected.name
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{expected.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for attempt in range(1, retries + 2):
                try:
                    stream_to(url, out, expected, timeout=timeout, progress=progress)
                    break
                except DroppedConnection as e:
                    if attempt > retries:
                        raise DownloadError(
                            f"{expected.name}: the connection to {url} dropped {attempt} times "
                            f"(last: {e}); expected {expected.expected()}") from e
                    time.sleep(retry_wait * attempt)
                except urllib.error.HTTPError as e:
                    raise DownloadError(
                        f"{expected.name}: HTTP {e.code} {e.reason} from {url}; expected the "
                        f"file ({expected.expected()})") from e
                except urllib.error.URLError as e:
                    raise DownloadError(
                        f"{expected.name}: cannot reach {url} ({e.reason}); expected the file "
                        f"({expected.expected()}). Check the network, or pass --mirror URL "
                        f"of another copy") from e
        problem = mismatch(tmp, expected)
        if problem is not None:
            raise DownloadError(f"{expected.name}: the file from {url} does not verify: "
                                f"{problem}; nothing was written to {final}")
        tmp.chmod(0o644)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def download(dest: str | Path, tasks: Iterable[str] = tuple(TASKS), mirror: str = DEFAULT_MIRROR,
             *, retries: int = 3, retry_wait: float = 1.0, timeout: float = 60.0,
             progress: bool = True, report: Callable[[Fetched], None] | None = None
             ) -> list[Fetched]:
    """Fetch the public files of ``tasks`` into ``dest`` (created), skipping files already there
    and verified; a file there that does not verify is fetched again and replaced.

    retries: further attempts after a dropped connection (waiting ``retry_wait`` seconds times
      the attempt number before each); timeout: seconds without data before a read gives up.
    report: called with each file's :class:`Fetched` as soon as it is done.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for expected in public_files(tasks):
        path = dest / expected.name
        if path.is_file() and mismatch(path, expected) is None:
            fetched = Fetched(expected.name, path, "present")
        else:
            fetch_file(file_url(mirror, expected.name), expected, dest, retries=retries,
                       retry_wait=retry_wait, timeout=timeout, progress=progress)
            fetched = Fetched(expected.name, path, "fetched")
        done.append(fetched)
        if report is not None:
            report(fetched)
    return done
