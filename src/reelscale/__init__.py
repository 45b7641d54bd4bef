"""reelscale: a self-hostable video-streaming platform."""

__version__ = "0.1.0"
