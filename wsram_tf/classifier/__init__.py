"""The classifier on images: glimpse sensor, networks, model, pictures, export."""
