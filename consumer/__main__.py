"""``python -m consumer``: the chestct consumer command line."""
import sys

from consumer.cli import main

sys.exit(main())
