"""Speaker diarization without torch: the CAM++ speaker model in numpy, and online clustering."""
