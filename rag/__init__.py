"""digestqa: question answering over arXiv daily digests, with citations."""
import os as _os

# Offline by default: no telemetry from onnxruntime, chroma or gradio.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
_os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"
