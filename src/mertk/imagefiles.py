"""The image file suffixes mertk reads as frames or pictures, everywhere (loaders, predict, explain)."""

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")
