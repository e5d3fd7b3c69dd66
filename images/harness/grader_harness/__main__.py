"""``python -I -m grader_harness [--preimport MODULE...]``: serve one submission."""

import sys

from . import child  # noqa: F401  imported before the fork so the child starts warm
from .supervisor import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
