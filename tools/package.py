"""`make package`: the deployable SAM template and zip of a stage, in dist/<stage>/, linted by cfn-lint.

1. the committed infra/<stage>.json must match the models (tools/infra.py --check);
2. `chalice package --stage <stage> --merge-template infra/<stage>.json dist/<stage>`;
3. cfn-lint on the result: it must be clean (exit 0: no errors, no warnings, nothing suppressed).

Usage: python -m tools.package [STAGE] [OUT_DIR]      (defaults: prod, dist/<stage>)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from chalicelib.config import UNDEPLOYED_STAGES
from tools import infra

ROOT = infra.ROOT
BIN = Path(sys.executable).parent


def package(stage: str, out_dir: Path, environment: dict[str, str] | None = None) -> Path:
    """`environment`: variables to import the app under (tests: which seed surfaces are switched on)."""
    if stage in UNDEPLOYED_STAGES:
        raise SystemExit(f"stage {stage!r} is for make run and the tests, never deployed: its seeds are open and it "
                         "takes test keys (package prod, or a stage of your own)")
    packaging_python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if packaging_python != infra.LAMBDA_RUNTIME:
        raise SystemExit(f"package with {infra.LAMBDA_RUNTIME} (the pinned Lambda runtime), not {packaging_python}: "
                         "the zip's compiled wheels are built for the packaging Python")
    if infra.main(["--check"]) != 0:
        raise SystemExit(1)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
           **(environment or {})}
    shutil.rmtree(out_dir, ignore_errors=True)
    subprocess.run([str(BIN / "chalice"), "package", "--stage", stage,
                    "--merge-template", str(infra.INFRA / f"{stage}.json"), str(out_dir)],
                   cwd=ROOT, env=env, check=True)
    subprocess.run([str(BIN / "cfn-lint"), "--", str(out_dir / "sam.json")], cwd=ROOT, check=True)
    print(f"{out_dir / 'sam.json'} and {out_dir / 'deployment.zip'}: cfn-lint clean")
    return out_dir


def main(argv: list[str]) -> int:
    stage = argv[0] if argv else "prod"
    out_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "dist" / stage
    package(stage, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
