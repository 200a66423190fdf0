"""Screens of the dualrec app: the main screen and the dialogs / pages pushed over it."""
