"""ModelFactory: base models, LoRA fine-tuning and adapters, off the ledger.

Heavy ML work happens here; what enters the ledger are hashes: a base model's `weights_hash`, an
adapter's `adapter_hash`, the hyper-parameters' hash, and the Datanet snapshot root trained on.
"""

import os

# Before any submodule imports transformers/huggingface_hub, which read these once at import time:
# nothing in the factory may reach a hub, whatever path a caller passes.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
