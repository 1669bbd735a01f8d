"""k-means with pyspark.ml (numpy needed) on a libsvm file found by its relative path, as
Spark's own ml/kmeans_example.py does: the centers and the silhouette."""

from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("kmeans").getOrCreate()
dataset = spark.read.format("libsvm").load("data/mllib/sample_kmeans_data.txt")
model = KMeans().setK(2).setSeed(1).fit(dataset)
predictions = model.transform(dataset)
silhouette = ClusteringEvaluator().evaluate(predictions)
print(f"Silhouette with squared euclidean distance = {silhouette:.10f}")
for center in sorted(model.clusterCenters(), key=lambda c: list(c)):
    print("Center:", " ".join(f"{x:.10f}" for x in center))
spark.stop()
