"""``python -m pacsradar``."""

from pacsradar.cli import main

main()
