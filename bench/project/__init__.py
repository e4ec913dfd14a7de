"""The Django project of the benchmark: one library, chosen by BENCH_LIB."""
