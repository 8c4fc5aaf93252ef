"""Pure torch, no ComfyUI: nothing is booted here. The tensors are tiny: one thread is faster than
fighting over the cores of a shared CI machine."""
import torch

torch.set_num_threads(1)
