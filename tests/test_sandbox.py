"""The grading sandbox (sslkit/teach/sandbox.py): hostile code run in it fails inside it, and
nothing outside is harmed. Each test runs a small hostile script (no notebook, no otter: the
grading test of tests/test_course.py runs real notebooks through the same sandbox)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from sslkit.teach import sandbox

PROBLEM = sandbox.problem()
pytestmark = pytest.mark.skipif(
    PROBLEM is not None and os.environ.get("CI") != "true",
    reason=f"no sandbox on this machine: {PROBLEM}",
)


def run_hostile(code: str, tmp_path, hide=(), limits=None, timeout=120):
    """Run ``code`` in the sandbox as grading does: a read-only copy folder, the log on disk
    outside, a result pipe; returns (what the code reported on the pipe, the log's size)."""
    assert PROBLEM is None, PROBLEM
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    work.chmod(0o755)
    read, write = os.pipe()
    script = f"import json, os\nREPORT = os.fdopen({write}, 'w')\n" + code
    cmd = sandbox.command([sys.executable, "-c", script], work, hide, limits or sandbox.Limits())
    with open(tmp_path / "log.txt", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, pass_fds=(write,))
        os.close(write)
        with os.fdopen(read) as f:
            said = f.read()
        proc.wait(timeout=timeout)
    lines = said.strip().splitlines()
    return (json.loads(lines[-1]) if lines else None), (tmp_path / "log.txt").stat().st_size


@pytest.fixture
def the_class(tmp_path):
    """What a grader's machine holds: other students' notebooks and the autograders."""
    subs, graders = tmp_path / "submissions", tmp_path / "autograder"
    (subs / "ada").mkdir(parents=True)
    (subs / "ada" / "03_clustering.ipynb").write_text("ada's secret answer")
    graders.mkdir()
    (graders / "03_clustering.zip").write_bytes(b"the autograder")
    return subs, graders


def test_other_students_and_the_autograders_are_out_of_reach(tmp_path, the_class):
    subs, graders = the_class
    code = f"""
import shutil
seen = {{}}
for path in ({str(subs / "ada" / "03_clustering.ipynb")!r}, "/etc/hostname"):
    try:
        seen[path] = open(path).read()[:40]
    except OSError as e:
        seen[path] = type(e).__name__
for folder in ({str(graders)!r}, {str(subs)!r}):
    shutil.rmtree(folder, ignore_errors=True)
    for name in ("planted.txt", "../planted.txt"):
        try:
            open(os.path.join(folder, name), "w").write("x")
            seen[name] = "written"
        except OSError as e:
            seen[name] = type(e).__name__
for target in ("/etc/planted", "/tmp/work/submission.ipynb", os.path.expanduser("~/x")):
    try:
        open(target, "w").write("x")
        seen[target] = "written"
    except OSError as e:
        seen[target] = type(e).__name__
seen["uid"] = os.getuid()
print(json.dumps(seen), file=REPORT)
"""
    seen, _ = run_hostile(code, tmp_path, hide=[subs, graders])
    assert seen[str(subs / "ada" / "03_clustering.ipynb")] == "FileNotFoundError"
    assert seen["/etc/hostname"] != "FileNotFoundError"  # the system is there, read-only
    assert seen["/etc/planted"] in {"OSError", "PermissionError"}
    assert seen["/tmp/work/submission.ipynb"] in {"OSError", "PermissionError"}
    assert "written" not in {seen["../planted.txt"]}
    if os.geteuid() == 0:
        assert seen["uid"] == sandbox.NOBODY
    assert (subs / "ada" / "03_clustering.ipynb").read_text() == "ada's secret answer"
    assert (graders / "03_clustering.zip").read_bytes() == b"the autograder"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "autograder", "log.txt", "submissions", "work"
    ]  # fmt: skip


def test_no_network_the_graders_own_services_included(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = f"""
import socket
out = {{}}
for host in ("127.0.0.1", "10.0.0.1"):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, {port}))
        out[host] = "connected"
    except OSError as e:
        out[host] = type(e).__name__
print(json.dumps(out), file=REPORT)
"""
    out, _ = run_hostile(code, tmp_path)
    assert "connected" not in out.values(), out
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path):
    code = """
import time
started = 0
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    started += 1
print(json.dumps({"started": started}), file=REPORT)
"""
    out, _ = run_hostile(code, tmp_path, limits=sandbox.Limits(processes=40))
    assert out["started"] < 40


def test_a_gigabyte_of_output_stops_at_the_file_size_limit(tmp_path):
    code = """
import sys
line = "x" * 1023 + "\\n"
try:
    for _ in range(2**20):
        sys.stdout.write(line)
    sys.stdout.flush()
    print(json.dumps({"wrote": "all"}), file=REPORT)
except OSError as e:
    print(json.dumps({"wrote": type(e).__name__}), file=REPORT)
"""
    out, log_size = run_hostile(code, tmp_path, limits=sandbox.Limits(file_size=2**20))
    assert log_size <= 2**20 and (out is None or out["wrote"] != "all")


def test_filling_the_disk_stops_at_its_own_tmp(tmp_path):
    before = os.statvfs(tmp_path).f_bavail
    code = """
block = b"x" * 2**20
written = 0
try:
    for place in ("/tmp", "/tmp/work", "/var/tmp", os.path.expanduser("~")):
        for i in range(64):
            try:
                with open(os.path.join(place, f"fill{i}"), "wb") as f:
                    f.write(block)
                written += 1
            except OSError:
                break
finally:
    print(json.dumps({"written_mb": written}), file=REPORT)
"""
    out, _ = run_hostile(code, tmp_path, limits=sandbox.Limits(tmp_size=8 * 2**20))
    assert out["written_mb"] <= 8
    assert os.statvfs(tmp_path).f_bavail >= before - 2**24 // os.statvfs(tmp_path).f_frsize


def test_limits_must_be_positive_whole_numbers():
    with pytest.raises(ValueError, match="Limits.processes must be a positive whole number"):
        sandbox.Limits(processes=0)


def test_the_python_that_grades_cannot_be_hidden(tmp_path):
    with pytest.raises(ValueError, match="is the Python that grades"):
        sandbox.command(["true"], tmp_path, hide=[sys.prefix])


def test_the_session_sockets_and_dev_shm_are_out_of_reach(tmp_path):
    """Sockets that live as files (D-Bus, Docker: under /run) are hidden with /run, the
    grader's home and runtime folder; /dev/shm is a small tmpfs of the sandbox's own."""
    if not os.access("/run", os.W_OK):
        pytest.skip("cannot plant a socket under /run here")
    path = f"/run/sslkit-test-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    try:
        code = f"""
import socket
out = {{}}
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({path!r})
    out["socket"] = "connected"
except OSError as e:
    out["socket"] = type(e).__name__
written = 0
try:
    with open("/dev/shm/fill", "wb") as f:
        for _ in range(64):
            f.write(b"x" * 2**20)
            written += 1
except OSError:
    pass
out["shm_mb"] = written
out["home"] = sorted(os.listdir(os.path.expanduser({str(os.path.expanduser("~"))!r})))
print(json.dumps(out), file=REPORT)
"""
        out, _ = run_hostile(code, tmp_path, limits=sandbox.Limits(tmp_size=8 * 2**20))
    finally:
        server.close()
        os.unlink(path)
    assert out["socket"] == "FileNotFoundError"
    assert out["shm_mb"] <= 8
    home = pathlib.Path.home()
    visible = {p.name for p in home.iterdir()}
    assert set(out["home"]) < visible or not visible, out["home"]  # only what Python needs
