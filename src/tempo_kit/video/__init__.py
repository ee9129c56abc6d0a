"""Video decoding, frame sampling, segmenting and the frames-to-patches transform."""
