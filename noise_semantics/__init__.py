"""The pack's Python package. ``core`` is pure torch (no ComfyUI import) and can be imported on its
own; the ComfyUI nodes live in the other modules and are wired up by the repository's root
``__init__.py``, which ComfyUI loads."""
