"""`python -m infra.cli`: the `robson` command."""

from infra.cli import main

raise SystemExit(main())
