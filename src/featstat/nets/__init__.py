"""Generator and discriminator architectures used by the engines (synthesis, prior, training).

Import the architectures from their modules (``featstat.nets.texture``, ``featstat.nets.hourglass``, ...).
"""
