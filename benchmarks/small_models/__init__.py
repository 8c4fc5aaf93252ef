"""The small diffusion models the project trains itself (the digits demo, demo/models.py; the
compositional task, benchmarks/compositional/models.py): one module that builds them from ComfyUI's
own classes and stores them (``build``), one training loop (``train``). Each task keeps its own data,
conditioning and latent code. Import only after ComfyUI is booted (``tests/host.py: boot()``)."""
