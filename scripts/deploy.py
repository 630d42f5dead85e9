#!/usr/bin/env python3
"""Deploy one environment: register, build, run (local) or publish and schedule (Azure).

python scripts/deploy.py [--env local] [--stage register|build|run|publish|schedule|all]
                         [--plan] [--json]
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from amlops.cli import deploy_main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--root" not in argv:
        argv = ["--root", str(ROOT), *argv]
    sys.exit(deploy_main(argv))
