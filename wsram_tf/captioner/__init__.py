"""The captioner over frozen-CNN feature maps: model, decoding, pictures, export, BLEU."""
