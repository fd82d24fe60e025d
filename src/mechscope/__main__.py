"""``python -m mechscope`` is the ``mechscope`` command."""

from mechscope.cli import main

main()
