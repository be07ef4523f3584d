"""styletransfer: neural style transfer (Gatys optimisation and AdaIN feed-forward)."""
__version__ = "0.1.0"
