"""``python -m featstat …``: the same command line as ``featstat …``."""

from featstat.cli import main

if __name__ == "__main__":
    main(prog_name="featstat")
