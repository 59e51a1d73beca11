"""``python -m pacsradar``."""

from pacsradar.cli import main

# Guarded: Dask's LocalCluster starts its workers with multiprocessing's "spawn", which
# re-imports the main module in every child; unguarded, each would run the CLI again.
if __name__ == "__main__":
    main()
