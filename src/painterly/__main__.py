"""`python -m painterly` (what `torchrun -m painterly train ...` runs)."""
import sys

from .cli import main

sys.exit(main())
