# chunkserver/: see the module headers.
