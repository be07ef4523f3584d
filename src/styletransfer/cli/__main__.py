"""``python -m styletransfer.cli``: the ``styletransfer`` command."""
import sys

from . import main

sys.exit(main())
