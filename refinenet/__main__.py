"""``python -m refinenet ...`` is the same as the ``refinenet`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
