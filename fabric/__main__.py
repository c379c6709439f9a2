"""`python -m fabric` is the `fabric` command."""
import sys

from .cli import main

sys.exit(main())
