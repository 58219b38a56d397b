"""evalwire's default plugins, one module per entry-point name.

They are registered through the ``evalwire`` entry-point group like any
third-party plugin, and implement first-answer hooks with ``trylast=True`` so
an installed plugin overrides them.
"""
