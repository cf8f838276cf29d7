# Tests: C unit tests per area (tests/unit/*.mk), bats end-to-end tests.
include tests/unit/common.mk
include tests/unit/metadata.mk
include tests/unit/chunkserver.mk
include tests/unit/fs.mk
