"""``python -m painterly.cli``: the ``painterly`` command."""
import sys

from . import main

sys.exit(main())
