"""`python -m tally_client`: the `tally` command line."""
import sys

from tally_client.cli import main

sys.exit(main())
