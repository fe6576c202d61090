"""`make run`: DynamoDB Local (or the endpoint in the environment), tables, then `chalice local`.

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

DATA_DIR = dynamodb_local.PROJECT_ROOT / ".data" / "dynamodb"
SECRET_FILE = dynamodb_local.PROJECT_ROOT / ".data" / "jwt-secret"


def local_jwt_secret() -> str:
    """Seed 002's signing key for `make run`: generated once, kept under .data/ (git-ignored), so tokens
    survive a restart. A deployed stage reads JWT_SECRET_KEY from its configuration instead."""
    if not SECRET_FILE.exists():
        SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
        SECRET_FILE.touch(mode=0o600)
        SECRET_FILE.write_text(secrets.token_urlsafe(32))
    return SECRET_FILE.read_text().strip()


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
        subprocess.run([sys.executable, "-m", "tools.create_tables"], env=env, check=True,
                       cwd=dynamodb_local.PROJECT_ROOT)
        # No autoreload: Chalice's reloader polls the whole project, including the database
        # under .data/, so every write would restart the server mid-session.
        chalice = [str(Path(sys.executable).parent / "chalice"), "local", "--no-autoreload", "--stage", "local",
                   "--host", "127.0.0.1", "--port", str(port)]
        print(f"DynamoDB: {endpoint}\nTally API: http://127.0.0.1:{port}   (Ctrl-C stops both)", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
