"""Media I/O with PyAV + soundfile: probing, frame sampling, 16 kHz mono audio, streaming, segmentation, and
writing a clip.

Every failure surfaces as ``MediaError`` (file, problem, fix); no FFmpeg binary, decord or torchaudio.
"""

from affectllm.media.audio import iter_audio_chunks, load_audio
from affectllm.media.errors import MediaError
from affectllm.media.image import load_image
from affectllm.media.probe import MediaInfo, probe
from affectllm.media.segments import Segment, plan_segments, speech_regions
from affectllm.media.video import Frames, load_frames
from affectllm.media.writing import write_clip

__all__ = [
    "Frames",
    "MediaError",
    "MediaInfo",
    "Segment",
    "iter_audio_chunks",
    "load_audio",
    "load_frames",
    "load_image",
    "plan_segments",
    "probe",
    "speech_regions",
    "write_clip",
]
