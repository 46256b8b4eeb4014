"""ggk-ebms: a Digikoppeling ebMS 2.0 endpoint for the iWmo/iJw/iEb traffic of the GGk."""

__version__ = "0.1.0"
