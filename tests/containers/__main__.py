"""``python -m tests.containers`` (what `make container-test` runs)."""

import sys

from tests.containers.run import main

sys.exit(main())
