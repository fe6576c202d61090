"""`make run`: DynamoDB Local (or the endpoint in the environment), tables, a development API key, then
Chalice's local server (tools/local_http.py).

Everything listens on 127.0.0.1; the data persists under `.data/dynamodb`;
the server stops after TALLY_RUN_SECONDS (default 8 hours), on Ctrl-C or on SIGTERM.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from tools import dynamodb_local

DATA = Path(os.environ.get("TALLY_DATA_DIR") or dynamodb_local.PROJECT_ROOT / ".data")  # tests use their own
DATA_DIR = DATA / "dynamodb"
SECRET_FILE = DATA / "jwt-secret"
KEY_FILE = DATA / "dev-key"
ENDPOINT_FILE = DATA / "dynamodb-endpoint"  # tools/keys.py reads it
DEV_TENANT = "dev"


def local_jwt_secret() -> str:
    """Seed 002's signing key for `make run`: generated once, kept under .data/ (git-ignored), so tokens
    survive a restart. A deployed stage refuses JWT_SECRET_KEY: it reads Secrets Manager only (stage_secret.py)."""
    if not SECRET_FILE.exists():
        SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
        SECRET_FILE.touch(mode=0o600)
        SECRET_FILE.write_text(secrets.token_urlsafe(32))
    return SECRET_FILE.read_text().strip()


def development_key(env: dict) -> str:
    """A /v1 key for `make run` (tenant `dev`, scope admin): made once, kept under .data/ (git-ignored) with
    the database it belongs to. A deployed stage's keys are made with `make key` and shown only once."""
    made = subprocess.run([sys.executable, "-m", "tools.keys", "dev", "--file", str(KEY_FILE), "--tenant", DEV_TENANT],
                          env=env, check=True, capture_output=True, text=True, cwd=dynamodb_local.PROJECT_ROOT)
    return made.stdout.strip()


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # a supervisor's SIGTERM stops both servers, as Ctrl-C does


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    port = int(os.environ.get("PORT", "8000"))
    lifetime = float(os.environ.get("TALLY_RUN_SECONDS", str(8 * 3600)))
    with dynamodb_local.running(DATA_DIR, existing=dynamodb_local.endpoint_from_environment()) as endpoint:
        env = dynamodb_local.environment_for(endpoint)
        env.setdefault("TALLY_STAGE", "local")
        env.setdefault("JWT_SECRET_KEY", local_jwt_secret())
        # DynamoDB Local on two cores serves a burst on a cold JVM several times slower than DynamoDB: 128
        # concurrent first postings took up to 10 s each, and a few ran out of the 15 s retry budget (503).
        # Locally a posting may retry for 25 s, still under API Gateway's 29 s.
        env.setdefault("TALLY_RETRY_SECONDS", "25")
        subprocess.run([sys.executable, "-m", "tools.create_tables"], env=env, check=True,
                       cwd=dynamodb_local.PROJECT_ROOT)
        ENDPOINT_FILE.parent.mkdir(parents=True, exist_ok=True)
        ENDPOINT_FILE.write_text(endpoint)  # where `make key` finds the database this server uses
        token = development_key(env)
        # Chalice's local server with a deeper listen backlog and API Gateway's 401 (tools/local_http.py).
        # No autoreload: Chalice's reloader polls the whole project, including the database under .data/.
        chalice = [sys.executable, "-m", "tools.local_http", "--stage", "local", "--port", str(port)]
        print(f"DynamoDB: {endpoint}\nTally API: http://127.0.0.1:{port}   (Ctrl-C stops both)\n"
              f"Console: http://127.0.0.1:{port}/console   (paste the key below)\n"
              f"/v1 development key (tenant {DEV_TENANT}, admin; also in {KEY_FILE}):\n"
              f"  export TALLY_KEY={token}", flush=True)
        server = subprocess.Popen(chalice, env=env, cwd=dynamodb_local.PROJECT_ROOT, start_new_session=True)
        try:
            return server.wait(timeout=lifetime)
        except subprocess.TimeoutExpired:
            print(f"stopping after {lifetime:.0f}s (TALLY_RUN_SECONDS)", flush=True)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            dynamodb_local.stop(server)
            ENDPOINT_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
