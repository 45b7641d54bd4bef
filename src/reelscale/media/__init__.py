"""Uploads, probing, the transcode ladder, blob stores, renditions, thumbnails."""
