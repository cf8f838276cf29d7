# mapreduce/: the MapReduce runner.  Pure cores (split.h: splits and line
# records; job.h: the task state machine; scheduler.h: delay scheduling),
# the shuffle's external sort (kvsort.h), streaming processes (proc.h), the
# task runner (task.h, used by the chunkserver's task executor) and the job
# coordinator (coordinator.h, run by `tessera mr run`).
noinst_LIBRARIES += libtsmr.a
libtsmr_a_SOURCES = \
	mapreduce/split.c mapreduce/split.h \
	mapreduce/job.c mapreduce/job.h \
	mapreduce/scheduler.c mapreduce/scheduler.h \
	mapreduce/kvsort.c mapreduce/kvsort.h \
	mapreduce/proc.c mapreduce/proc.h \
	mapreduce/task.c mapreduce/task.h \
	mapreduce/coordinator.c mapreduce/coordinator.h
EXTRA_DIST += mapreduce/examples/wordcount_map.sh mapreduce/examples/wordcount_reduce.sh \
	mapreduce/examples/grep_map.sh mapreduce/examples/index_map.sh \
	mapreduce/examples/index_reduce.sh mapreduce/examples/README
