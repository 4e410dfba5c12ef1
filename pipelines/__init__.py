"""tf.data input pipelines: translated-scaled MNIST, Flickr8k captions."""
