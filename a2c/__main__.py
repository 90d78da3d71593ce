import sys

from a2c.cli.main import main

sys.exit(main())
