"""``python -m styletransfer.web`` = ``styletransfer serve``."""
import sys

from . import main

sys.exit(main())
