"""Errors meant for the user: the CLI prints their message on one line and exits with code 2."""


class StarGANError(Exception):
    """Bad input from the user (path, label, config, model folder). Message is one clear line."""
