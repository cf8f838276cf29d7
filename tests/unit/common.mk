# unit tests for common/
