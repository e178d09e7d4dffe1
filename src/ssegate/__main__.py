"""`python -m ssegate` runs the command line."""

from ssegate.cli import main

raise SystemExit(main())
