"""``python -m minitorch_seg`` is the ``minitorch-seg`` command."""
from .cli import main

raise SystemExit(main())
