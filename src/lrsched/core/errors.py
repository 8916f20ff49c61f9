"""Errors that stages turn into one-line messages and a non-zero exit."""


class LrschedError(Exception):
    """A problem the user can fix; the message names it and says how."""


class ConfigError(LrschedError):
    """Invalid or unknown configuration in params.yaml or on the command line."""


class DataError(LrschedError):
    """The dataset is missing, truncated or does not match its checksum."""


class Terminated(BaseException):
    """Raised from the SIGTERM handler, so a terminated run ends KILLED like on Ctrl-C."""
