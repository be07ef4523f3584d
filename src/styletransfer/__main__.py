"""`python -m styletransfer` (what `torchrun -m styletransfer train ...` runs)."""
import sys

from .cli import main

sys.exit(main())
