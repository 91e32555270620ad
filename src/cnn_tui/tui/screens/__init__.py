"""Screens and dialogs: the main screen, the menus, the params forms, file dialogs, confirmations, help."""
