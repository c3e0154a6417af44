"""Speaker diarization without torch: resemblyzer's encoder in numpy, and online clustering."""
