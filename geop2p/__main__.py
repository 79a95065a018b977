"""``python -m geop2p`` (and ``torchrun -m geop2p``) runs the CLI."""

from geop2p.cli import main

if __name__ == "__main__":
    main()
