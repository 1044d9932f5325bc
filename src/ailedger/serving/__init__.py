"""The serving engine: many LoRA adapters over one base model, batched together.

Three rooms with narrow doors: `lora` (the batched multi-adapter layers and their slots),
`adapters` (adapters on disk, in a byte-budgeted RAM cache, and in slots) and `engine` (requests,
continuous batching, per-request KV cache, sampling, streaming, usage). See docs/serving.md.
"""
