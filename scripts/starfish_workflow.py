#!/usr/bin/env python3
"""Run a starfish recipe over a whole experiment, locally or on AWS Batch.

    python scripts/starfish_workflow.py --experiment-url URL --recipe recipe.py --results-url URL

See `--help` and the README. The logic lives in the `starfish_batch` package (workers/).
"""

import sys
from pathlib import Path

try:
    from starfish_batch.launcher.cli import main
except ImportError:  # run from a clone without `pip install -e workers`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workers" / "src"))
    from starfish_batch.launcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
