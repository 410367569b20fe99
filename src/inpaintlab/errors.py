"""User-facing errors: one line that names the problem and what to do about it."""


class InpaintlabError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class BadImageError(InpaintlabError):
    """An image file that cannot be read, or an image tensor that breaks the conventions."""


class BadMaskError(InpaintlabError):
    """A hole mask that is the wrong size, not binary, empty or full."""


class MissingWeightsError(InpaintlabError):
    """A pretrained weight file that is not present and cannot be downloaded."""


class ConfigMismatchError(InpaintlabError):
    """A run folder that already holds a run with a different configuration."""
