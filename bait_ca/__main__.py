import sys

from bait_ca.cli import main

sys.exit(main())
