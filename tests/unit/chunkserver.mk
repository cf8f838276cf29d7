# unit tests for chunkserver/
