"""``mtl-tutor data``: download the public CS224N files, say where the data is, verify a folder."""

from __future__ import annotations

import sys
from pathlib import Path

from .data.download import DownloadError, Fetched, download
from .data.location import DATA_ENV, DOWNLOAD_COMMAND, data_home, missing_files
from .data.public import DEFAULT_MIRROR, PUBLIC_FILES, check_folder
from .data.tasks import TASKS, get_task


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"sst,sts"`` -> ``("sst", "sts")``; an unknown name is an error naming the valid ones."""
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    if not tasks:
        raise ValueError(f"--tasks names no task; valid tasks: {', '.join(TASKS)}")
    for task in tasks:
        get_task(task)
    return tasks


def cmd_download(args) -> int:
    dest = Path(args.dest) if args.dest else data_home()

    def report(fetched: Fetched) -> None:
        note = " (already there, verified)" if fetched.status == "present" else ""
        print(f"{fetched.status:8} {fetched.name}{note}", flush=True)

    try:
        done = download(dest, parse_tasks(args.tasks), args.mirror,
                        progress=not args.no_progress, report=report)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(done)} files verified in {dest}")
    return 0


def cmd_path(args) -> int:
    home = data_home()
    print(home)
    missing = missing_files(home)
    if missing:
        print(f"(no complete CS224N data there yet: missing {missing[0]}; fetch it with: "
              f"{DOWNLOAD_COMMAND})", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    directory = Path(args.dir) if args.dir else data_home()
    if not directory.is_dir():
        print(f"error: {directory} is not a folder; fetch the data with: {DOWNLOAD_COMMAND}",
              file=sys.stderr)
        return 1
    results = check_folder(directory)
    for name, problem in results.items():
        print(f"ok       {name}" if problem is None else f"MISMATCH {name}: {problem}")
    others = sorted(p.name for p in directory.glob("*.csv") if p.name not in PUBLIC_FILES)
    if others:
        print(f"not checked (not files of the public release): {', '.join(others)}")
    absent = [name for name in sorted(PUBLIC_FILES) if name not in results]
    if absent:
        print(f"not here: {', '.join(absent)}")
    bad = [name for name, problem in results.items() if problem is not None]
    if bad:
        print(f"error: {len(bad)} of {len(results)} public files in {directory} do not verify "
              f"({', '.join(bad)}); fetch them again with: {DOWNLOAD_COMMAND} --dest {directory}",
              file=sys.stderr)
        return 1
    if not results:
        print(f"error: no public CS224N file in {directory}; fetch them with: "
              f"{DOWNLOAD_COMMAND} --dest {directory}", file=sys.stderr)
        return 1
    print(f"{len(results)} public files verified in {directory}")
    return 0


def add_data_parser(sub, parents: list = ()) -> None:
    """Register ``mtl-tutor data {download,path,check}`` on the top-level subparsers; each
    takes the arguments of ``parents`` too."""
    p = sub.add_parser("data", help="download the public CS224N files; where the data is")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    d = data_sub.add_parser(
        "download", parents=parents, help="fetch and verify the public CS224N files",
        description=f"Fetch the public CS224N default-project files, each verified by its "
                    f"checksums before it appears under its name. Destination: --dest, else "
                    f"${DATA_ENV}, else the user's data directory ({data_home()}).")
    d.add_argument("--dest", help=f"folder to write (default: ${DATA_ENV} or the user's data "
                                  f"directory)")
    d.add_argument("--tasks", default=",".join(TASKS),
                   help="comma-separated task names (default: %(default)s)")
    d.add_argument("--mirror", default=DEFAULT_MIRROR,
                   help="URL of a folder serving the same files, or a local folder "
                        "(default: %(default)s)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_download)
    d = data_sub.add_parser("path", parents=parents,
                            help=f"print where the data is (${DATA_ENV}, else the user's data "
                                 "directory)")
    d.set_defaults(func=cmd_path)
    d = data_sub.add_parser("check", parents=parents, help="verify the public files in a folder")
    d.add_argument("dir", nargs="?", help="folder to check (default: where the data is)")
    d.set_defaults(func=cmd_check)
