"""``python -m compare``: see ``compare.cli``."""
from .cli import main

raise SystemExit(main())
