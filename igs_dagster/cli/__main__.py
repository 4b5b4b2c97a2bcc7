import sys

from igs_dagster.cli.app import main

sys.exit(main())
