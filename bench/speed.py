"""Speed benchmark (same as ``blockrank bench``): python bench/speed.py [--dtype bf16] [--ns 10,20,...]."""

import sys

from blockrank.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--command-line", "python bench/speed.py " + " ".join(sys.argv[1:]), *sys.argv[1:]]))
