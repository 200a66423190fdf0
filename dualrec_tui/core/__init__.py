"""The recommendation core shared by the app and `training`. No Textual, no app imports here."""
