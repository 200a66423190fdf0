"""Reusable widgets of the dualrec app (each in its own module, styled from app.tcss)."""
