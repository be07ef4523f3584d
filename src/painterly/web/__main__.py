"""``python -m painterly.web`` = ``painterly serve``."""
import sys

from . import main

sys.exit(main())
