# unit tests for fs/
