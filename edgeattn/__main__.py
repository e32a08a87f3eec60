"""`python -m edgeattn` (also what `torchrun -m edgeattn` runs)."""

from edgeattn.cli.app import main

if __name__ == "__main__":
    main()
