"""DataFrames and SQL over a JSON file found by its relative path (in the shape of
Spark's own sql/basic.py, which reads examples/src/main/resources/people.json)."""

from pyspark.sql import SparkSession
from pyspark.sql.functions import col

spark = SparkSession.builder.appName("sql basic").getOrCreate()
df = spark.read.json("examples/src/main/resources/people.json")
df.show()
df.printSchema()
df.select(col("name"), col("age") + 1).show()
df.filter(df["age"] > 21).show()
df.groupBy("age").count().orderBy("age").show()
df.createOrReplaceTempView("people")
spark.sql("SELECT name FROM people WHERE age BETWEEN 13 AND 19").show()
spark.stop()
