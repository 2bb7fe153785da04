"""Run the benchmark as a script: `python bench/run.py [options]`, same as `python -m bench`."""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.cli import main

    main()
