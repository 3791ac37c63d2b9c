"""``mtl-tutor data download`` and ``data check`` against a local HTTP server of the public files:
success, a tampered file, a connection dropped mid-file, a 404, an unreachable host, re-runs."""

import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from mtl_tutor.cli import main
from mtl_tutor.data.download import DownloadError, download, file_url
from mtl_tutor.data.public import (
    PUBLIC_FILES,
    check_folder,
    file_digests,
    mismatch,
    public_files,
)
from mtl_tutor.data.tasks import TASKS

SST_STS = [f.name for f in public_files(["sst", "sts"])]


class FaultyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder; ``server.drops[name]`` requests of ``name`` get the full
    Content-Length but only half the bytes before the connection closes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(self.server_root), **kwargs)

    def do_GET(self):
        name = self.path.lstrip("/")
        if self.server.drops.get(name, 0) > 0:
            self.server.drops[name] -= 1
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.server.served.append(name)
        super().do_GET()

    def log_message(self, format, *args):  # keep the test output quiet
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` -> (mirror URL, server); servers stop when the test ends."""
    servers = []

    def start(root: Path):
        handler = type("Handler", (FaultyHandler,), {"server_root": root})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.drops, server.served = {}, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def no_leftovers(dest: Path) -> list[str]:
    """Temporary files a download left behind (there must be none)."""
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("."))


def test_git_blob_ids_are_what_git_hash_object_prints(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "hello").write_bytes(b"hello\n")
    assert file_digests(tmp_path / "empty")[1] == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    size, blob, sha256 = file_digests(tmp_path / "hello")
    assert (size, blob) == (6, "ce013625030ba8dba906f756967f9e9ca394464a")
    assert sha256 == hashlib.sha256(b"hello\n").hexdigest()


def test_the_pinned_table_matches_the_public_files_and_their_sha256sums(public_data_dir):
    sums = dict(reversed(line.split()) for line in
                (public_data_dir / "SHA256SUMS").read_text().splitlines())
    for name, sha256 in sums.items():
        assert PUBLIC_FILES[name].sha256 == sha256
    assert check_folder(public_data_dir) == {name: None for name in sorted(sums)}


def test_every_task_names_its_public_files_and_together_they_are_the_release():
    assert [f.name for f in public_files(["sst"])] == [
        "ids-sst-train.csv", "ids-sst-dev.csv", "ids-sst-test-student.csv"]
    assert sorted(f.name for f in public_files(TASKS)) == sorted(PUBLIC_FILES)
    unpinned = [f.name for f in PUBLIC_FILES.values() if f.sha256 is None]
    assert unpinned == ["quora-test-student.csv", "quora-train.csv"]


def test_download_fetches_verified_files_and_a_rerun_skips_them(public_data_dir, serve,
                                                                tmp_path):
    mirror, server = serve(public_data_dir)
    dest = tmp_path / "data"
    done = download(dest, ["sst", "sts"], mirror, progress=False)
    assert [(f.name, f.status) for f in done] == [(n, "fetched") for n in SST_STS]
    for name in SST_STS:
        assert (dest / name).read_bytes() == (public_data_dir / name).read_bytes()
    assert no_leftovers(dest) == []
    again = download(dest, ["sst", "sts"], mirror, progress=False)
    assert [f.status for f in again] == ["present"] * len(SST_STS)
    assert server.served == SST_STS  # the re-run asked the server for nothing


def test_a_present_file_that_does_not_verify_is_fetched_again(public_data_dir, serve, tmp_path):
    mirror, _ = serve(public_data_dir)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "sts-dev.csv").write_text("not the file\n")
    done = {f.name: f.status for f in download(dest, ["sts"], mirror, progress=False)}
    assert done["sts-dev.csv"] == "fetched"
    assert mismatch(dest / "sts-dev.csv", PUBLIC_FILES["sts-dev.csv"]) is None


def test_a_tampered_file_is_an_error_naming_it_and_is_not_left_under_its_name(
        public_data_dir, serve, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(public_data_dir, served)
    tampered = served / "ids-sst-train.csv"
    data = bytearray(tampered.read_bytes())
    data[1000] ^= 1
    tampered.chmod(0o644)
    tampered.write_bytes(bytes(data))
    mirror, _ = serve(served)
    dest = tmp_path / "data"
    with pytest.raises(DownloadError) as error:
        download(dest, ["sst"], mirror, progress=False)
    message = str(error.value)
    assert message.startswith("ids-sst-train.csv:")
    assert f"{mirror}ids-sst-train.csv" in message
    assert PUBLIC_FILES["ids-sst-train.csv"].git_blob in message  # what was expected
    assert file_digests(tampered)[1] in message  # what was found
    assert not (dest / "ids-sst-train.csv").exists() and no_leftovers(dest) == []


def test_a_dropped_connection_is_retried_then_the_file_arrives(public_data_dir, serve,
                                                               tmp_path):
    mirror, server = serve(public_data_dir)
    server.drops["sts-train.csv"] = 2
    dest = tmp_path / "data"
    download(dest, ["sts"], mirror, retries=2, retry_wait=0, progress=False)
    assert server.drops["sts-train.csv"] == 0
    assert mismatch(dest / "sts-train.csv", PUBLIC_FILES["sts-train.csv"]) is None
    assert no_leftovers(dest) == []


def test_a_connection_that_keeps_dropping_is_a_clear_error_after_the_retries(
        public_data_dir, serve, tmp_path):
    mirror, server = serve(public_data_dir)
    server.drops["sts-train.csv"] = 10
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"sts-train\.csv: the connection to .* dropped "
                                            r"3 times \(last: the connection closed after"):
        download(dest, ["sts"], mirror, retries=2, retry_wait=0, progress=False)
    assert server.drops["sts-train.csv"] == 7
    assert not (dest / "sts-train.csv").exists() and no_leftovers(dest) == []


def test_http_404_names_the_file_the_url_and_the_expected_blob(public_data_dir, serve, tmp_path):
    mirror, _ = serve(public_data_dir)  # quora-train.csv is not among the public files here
    dest = tmp_path / "data"
    with pytest.raises(DownloadError) as error:
        download(dest, ["quora"], mirror, progress=False)
    assert str(error.value).startswith("quora-train.csv: HTTP 404 ")
    assert f"from {mirror}quora-train.csv" in str(error.value)
    assert PUBLIC_FILES["quora-train.csv"].git_blob in str(error.value)
    assert not (dest / "quora-train.csv").exists() and no_leftovers(dest) == []


def test_an_unreachable_host_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=rf"ids-sst-train\.csv: cannot reach "
                                            rf"http://127\.0\.0\.1:{port}/ids-sst-train\.csv"):
        download(dest, ["sst"], f"http://127.0.0.1:{port}", progress=False)
    assert list(dest.iterdir()) == []


def test_a_local_folder_serves_as_a_mirror(public_data_dir, tmp_path):
    assert file_url(str(public_data_dir), "sts-dev.csv") == (
        public_data_dir.resolve().as_uri() + "/sts-dev.csv")
    done = download(tmp_path, ["sts"], str(public_data_dir), progress=False)
    assert [f.status for f in done] == ["fetched"] * 3
    with pytest.raises(DownloadError, match="neither a URL nor a folder"):
        file_url(str(tmp_path / "nowhere"), "sts-dev.csv")


def test_download_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        download(tmp_path, ["sst"], retries=-1)
    with pytest.raises(ValueError, match="unknown task 'mnli'"):
        download(tmp_path, ["mnli"])


def test_the_commands_download_check_and_report_a_tampered_file(public_data_dir, serve,
                                                                tmp_path, capsys):
    mirror, _ = serve(public_data_dir)
    dest = tmp_path / "D"
    assert main(["data", "download", "--mirror", mirror, "--dest", str(dest),
                 "--tasks", "sst,sts", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[:6]] == [
        ["fetched", name] for name in SST_STS]
    assert f"6 files verified in {dest}" in out
    assert main(["data", "check", str(dest)]) == 0
    out = capsys.readouterr().out
    assert all(f"ok       {name}" in out for name in SST_STS)
    assert "not here: ids-cfimdb-dev.csv" in out

    (dest / "sts-dev.csv").write_bytes(b"changed\n")
    (dest / "sst-train.csv").write_text("a file of another layout\n")
    assert main(["data", "check", str(dest)]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH sts-dev.csv: found 8 bytes" in captured.out
    assert "not checked (not files of the public release): sst-train.csv" in captured.out
    assert "sts-dev.csv" in captured.err and "mtl-tutor data download" in captured.err

    assert main(["data", "check", str(tmp_path)]) == 1
    assert "no public CS224N file" in capsys.readouterr().err


def test_the_download_command_fails_with_one_line_naming_the_file(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["data", "download", "--mirror", f"http://127.0.0.1:{port}/",
                 "--dest", str(tmp_path / "D"), "--tasks", "sts", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sts-train.csv: cannot reach") and "\n" not in err
    assert main(["data", "download", "--dest", str(tmp_path), "--tasks", "sst,mnli"]) == 2
    assert "unknown task 'mnli'" in capsys.readouterr().err
