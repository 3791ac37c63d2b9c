"""The public CS224N default-project files: their names, sizes and checksums, and how to verify one.

The Stanford CS224N minBERT default final project distributes its data as the ``data/`` folder
of its starter code; one public copy is the GitHub repository
``gpoesia/minbert-default-final-project`` (:data:`DEFAULT_MIRROR`). Every file is pinned here by
its git blob id, the SHA-1 of ``b"blob <size>\\0" + content`` (what ``git hash-object FILE``
prints), and, where the file was at hand when this table was written, by its size and SHA-256.
A file verifies when every pinned value matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .tasks import TASKS, get_task

DEFAULT_MIRROR = "https://raw.githubusercontent.com/gpoesia/minbert-default-final-project/main/data/"
SPLITS = ("train", "dev", "test")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class PublicFile:
    """One file of the release. ``size`` and ``sha256`` are None where they are not pinned."""

    name: str
    git_blob: str
    size: int | None = None
    sha256: str | None = None

    def expected(self) -> str:
        """The pinned values, as an error message states them."""
        parts = [f"{self.size} bytes"] if self.size is not None else []
        parts.append(f"git blob id {self.git_blob}")
        if self.sha256 is not None:
            parts.append(f"SHA-256 {self.sha256}")
        return ", ".join(parts)


# name, bytes, git blob id, SHA-256 ("-": not pinned; those two files were not at hand)
PINNED = """
ids-cfimdb-dev.csv           249095 8a0f5dcf3d40189b96c801a12cd79bf8003e61de 3087f571b66860fe5d035b5a018d08202ad3fd3720e4821c04b2acf6c7ded559
ids-cfimdb-test-student.csv  495595 1e789c709b3ca0511f027a309b6d8bd21cde41b2 7ae611548c9eac879e9ebb406cc9f8ae68ff12f78090e4965af5cbdfa06240f4
ids-cfimdb-train.csv        1693182 cd57bcbd2f7214ea6dd1783d3e885d324b1f478d 140fc513045a966109faed46a5c7a898767b96714d71bcb9c15f659129fadcea
ids-sst-dev.csv              151384 3171aa629a340809d2db4a50df8f6e5ec9420ab0 a186ce94577635fbe10beaaddd50f16cccf6c30973221cefdf90deed2a584bfe
ids-sst-test-student.csv     313202 bbd2313758825f86e24416d6aad64cd93370cf7a bdd5a767faa0c26782117e37767ece154c30d5d04fb8727d09c71e3850a55c7b
ids-sst-train.csv           1175139 9cb7333cb1dae49c2bd2a4b56a24882a6e8704b5 03b2b625c090f94a6afd59f114cde5282e2053aab0b101e87ed695d8a0c5b1df
quora-dev.csv               3205321 de7cfa32428fd470b93f778fccc45a619e01336f bfa3cc954a9ba300ae776a980141de65f622a3c1b97e3fd905d63245bc36d5ad
quora-test-student.csv            - f257ef00558555afb50819578a58205732b16354 -
quora-train.csv                   - a3b5546f6a0e65b60a328a5d294d1038f5bed1da -
sts-dev.csv                  132265 9392860e584717976b8d817cc40c9e6ceeec27e0 ce3cad6f16062586ac7ba462c28b010a9be10c530fd5074165860d7b7ab4e93d
sts-test-student.csv         256677 25f0cf8fafdd1f82b9e2bb460c708af34341ce60 dee455745b72e9ca3ff74e7c056bd73e34bad5b8d5641045a2c1e7e131866f47
sts-train.csv                928832 12b17760e7795fee35aeeabc290d5651de02622a 15d12efc2d656fffb1d61ac1f08ec4227f43925fd16f420c037cbd063699c21b
"""  # noqa: E501 (one file per line)


def parse_pinned(table: str) -> dict[str, PublicFile]:
    """:data:`PINNED` as name -> :class:`PublicFile`."""
    files = {}
    for line in table.strip().splitlines():
        name, size, blob, sha256 = line.split()
        files[name] = PublicFile(name, blob, None if size == "-" else int(size),
                                 None if sha256 == "-" else sha256)
    return files


PUBLIC_FILES: dict[str, PublicFile] = parse_pinned(PINNED)


def public_files(tasks: Iterable[str] = tuple(TASKS)) -> list[PublicFile]:
    """The release's files of ``tasks`` (train, dev and test inputs of each), in that order."""
    files = []
    for task in tasks:
        spec = get_task(task)
        for split in SPLITS:
            files += [PUBLIC_FILES[n] for n in spec.file_names(split) if n in PUBLIC_FILES]
    return files


def file_digests(path: str | Path) -> tuple[int, str, str]:
    """``(size, git blob id, SHA-256)`` of a file, read once in chunks."""
    path = Path(path)
    size = path.stat().st_size
    blob, sha256 = hashlib.sha1(f"blob {size}\0".encode()), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            blob.update(chunk)
            sha256.update(chunk)
    return size, blob.hexdigest(), sha256.hexdigest()


def mismatch(path: str | Path, expected: PublicFile) -> str | None:
    """What in ``path`` differs from the pinned values of ``expected``, or None when it verifies."""
    size, blob, sha256 = file_digests(path)
    found = []
    if expected.size is not None and size != expected.size:
        found.append(f"{size} bytes")
    if blob != expected.git_blob:
        found.append(f"git blob id {blob}")
    if expected.sha256 is not None and sha256 != expected.sha256:
        found.append(f"SHA-256 {sha256}")
    if not found:
        return None
    return f"found {', '.join(found)}; expected {expected.expected()}"


def check_folder(directory: str | Path) -> dict[str, str | None]:
    """Every public file present in ``directory``, name -> :func:`mismatch` (None: verified)."""
    directory = Path(directory)
    return {name: mismatch(directory / name, expected)
            for name, expected in sorted(PUBLIC_FILES.items()) if (directory / name).is_file()}
