"""Counts whitespace-separated words of a text file, one "word: count" line each (in the
shape of Spark's own wordcount example)."""

import sys
from operator import add

from pyspark.sql import SparkSession

if len(sys.argv) != 2:
    print("Usage: wordcount <file>", file=sys.stderr)
    sys.exit(-1)
spark = SparkSession.builder.appName("wordcount").getOrCreate()
lines = spark.read.text(sys.argv[1]).rdd.map(lambda r: r[0])
counts = lines.flatMap(lambda x: x.split(" ")).map(lambda w: (w, 1)).reduceByKey(add)
for word, count in counts.collect():
    print(f"{word}: {count}")
spark.stop()
