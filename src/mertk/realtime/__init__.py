"""Running mertk on long videos and live input: spotting micro-expressions in a recording
(:mod:`mertk.realtime.spotting`), then decoding, face tracking and classification of each event."""
