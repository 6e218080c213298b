import pathlib
import sys

# Benchmarks import their shared engine adapters (engines.py) as a top-level module.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
