"""Estimates pi by throwing darts at the unit square (written for sparkube's tests in the
shape of Spark's own pi example: an optional number of partitions, one printed line)."""

import random
import sys
from operator import add

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("pi").getOrCreate()
partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 2
n = 100_000 * partitions


def dart(_: int) -> int:
    x, y = random.random() * 2 - 1, random.random() * 2 - 1
    return 1 if x * x + y * y <= 1 else 0


inside = spark.sparkContext.parallelize(range(1, n + 1), partitions).map(dart).reduce(add)
print(f"Pi is roughly {4.0 * inside / n:f}")
spark.stop()
