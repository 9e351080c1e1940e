"""The model family: configuration, modeling, processing, projector (Q-Former and the AffectGPT type), frozen
towers, the language model, checkpoints, and the media processing the processor does.

Nothing is imported here, so ``import affectllm.model.configuration_affectllm`` stays light.
"""
