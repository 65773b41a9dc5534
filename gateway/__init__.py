"""The Yangtze Delta carbon-inclusive interoperability gateway."""

__version__ = "0.1.0"
