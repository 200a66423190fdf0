"""Training and evaluation of every dualrec model: `python -m training --help`."""
