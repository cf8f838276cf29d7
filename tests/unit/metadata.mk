# unit tests for metadata/
