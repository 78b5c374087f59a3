import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The program's package, and the policy pack's rules (importable without starting the pack).
sys.path[:0] = [str(ROOT), str(ROOT / "policy")]
