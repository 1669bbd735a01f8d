"""The Spark container image sparkube deploys, and the S3 jars it ships to pods: one table.

Everything here was read from published sources (checked 2026-12); each field says where.

Image (``apache/spark``, built from https://github.com/apache/spark-docker, snapshot
7f2e1f0a96af4eaf23fc5cf441de38bbdca66371 of 2026-06-25):

- ``versions.json`` lists ``4.1.2-scala2.13-java17-python3-ubuntu`` (path
  ``4.1.2/scala2.13-java17-python3-ubuntu``); 4.1.2 is the newest stable version there
  (the only newer one is ``4.2.0-preview5``). Spark 4.1.2 was published to the registry
  by SPARK-56989 (commit 5932802). Careful: the short alias ``4.1.2-python3`` is the
  **java21** variant; the java17 python3 variant is ``4.1.2-java17`` / ``python3-java17``.
- ``4.1.2/scala2.13-java17-python3-ubuntu/Dockerfile``: ``FROM
  spark:4.1.2-scala2.13-java17-ubuntu`` plus ``apt-get install python3 python3-pip``.
- ``4.1.2/scala2.13-java17-ubuntu/Dockerfile``: ``FROM eclipse-temurin:17-jammy``
  (Ubuntu 22.04, whose ``python3`` is 3.10); user ``spark`` uid/gid 185 (``USER spark``,
  by name), ``SPARK_HOME=/opt/spark``, ``WORKDIR /opt/spark/work-dir`` (``chmod g+w``,
  owned by spark), ``ENTRYPOINT ["/opt/entrypoint.sh"]``, tini and gosu installed; the
  Spark home is ``spark-4.1.2-bin-hadoop3.tgz``'s ``jars``, ``bin``, ``sbin``,
  ``examples``, ``data``, ``python/pyspark``, ``python/lib``, ``R``, ``RELEASE`` (no
  ``conf/``), with ``examples/jars/spark-examples.jar`` a symlink to
  ``spark-examples_2.13-4.1.2.jar``. No ``PYTHONPATH`` is set: ``spark-submit`` puts
  ``$SPARK_HOME/python/lib/pyspark.zip`` and ``py4j-*-src.zip`` on the Python path itself.
- ``4.1.2/scala2.13-java17-ubuntu/entrypoint.sh``: the driver/executor contract that
  ``tools/spark/build.sh`` re-implements for the local test image.

PyPI ``pyspark==4.1.2`` exists, requires Python >= 3.10 (its ``setup.py``) and depends on
``py4j>=0.10.9.7,<0.10.9.10``; its ``python/lib`` holds ``py4j-0.10.9.9-src.zip``.

Versions from Maven Central POMs:

- ``org.apache.spark:spark-parent_2.13:4.1.2``: ``hadoop.version`` 3.4.2,
  ``aws.java.sdk.v2.version`` 2.29.52, ``scala.version`` 2.13.17, ``java.version`` 17.
- ``org.apache.hadoop:hadoop-project:3.4.2``: ``aws-java-sdk-v2.version`` 2.29.52,
  ``amazon-s3-analyticsaccelerator-s3.version`` 1.2.1.
- ``org.apache.hadoop:hadoop-aws:3.4.2``: compile deps ``software.amazon.awssdk:bundle``
  (the ~600 MB shaded SDK; not shipped) and ``analyticsaccelerator-s3``; runtime dep
  ``org.wildfly.openssl:wildfly-openssl``.
- ``org.apache.spark:spark-examples_2.13`` is **not** published to Maven Central (404).

S3 jars (:attr:`SparkImage.s3_jars`): ``mvn dependency:list`` (runtime scope) of
``hadoop-aws:3.4.2`` with ``bundle`` excluded plus the SDK modules ``s3``, ``sts``,
``s3-transfer-manager``, ``apache-client`` and ``netty-nio-client`` (versions from the
``software.amazon.awssdk:bom:2.29.52``), minus what Spark 4.1.2's ``jars/`` already has
(``io.netty:*`` 4.2.7, ``httpclient`` 4.5.14, ``httpcore`` 4.4.16, ``commons-codec``
1.19.0, ``slf4j-api`` 2.0.17, and ``commons-logging``, covered by ``jcl-over-slf4j``).
Sizes and SHA-1s are those of the files on Maven Central (each matched its ``.sha1``);
the SHA-256s were computed from those same bytes.
Known gap of the lean set: hadoop-aws 3.4.2 uses the bundle's shaded ``URIBuilder`` in
``STSClientFactory`` when an explicit STS endpoint is configured (assumed roles), and
``fs.s3a.ssl.channel.mode`` silently falls back (``ConfigureShadedAWSSocketFactory``).

Plus ``org.apache.spark:spark-hadoop-cloud_2.13:4.1.2`` (33 KB, not in the image's
``jars/``): Spark's binding of its SQL writes to Hadoop's ``PathOutputCommitter``
factories (``PathOutputCommitProtocol``, ``BindingParquetOutputCommitter``), through
which cluster jobs commit their S3 output with the S3A magic committer (hadoop-aws's
``org.apache.hadoop.fs.s3a.commit``; see ``spark_properties`` in
:mod:`sparkube.spark.podspec`). Its POM declares Spark, Hadoop's client jars and the
cloud connectors (hadoop-aws with the SDK bundle, Azure, GCS, ...); none of those is
needed beyond this table: the classes it references outside itself (``javap``) are all
in Spark 4.1.2's ``jars/`` (``hadoop-client-api``: ``PathOutputCommitterFactory``,
``BindingPathOutputCommitter``, ``Abortable``; ``parquet-hadoop``:
``ParquetOutputCommitter``; ``spark-core``/``spark-sql``/``spark-common-utils``), and the
S3A committers themselves are in hadoop-aws.
"""

from __future__ import annotations

from dataclasses import dataclass

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class MavenJar:
    """One jar on a Maven repository: ``group:artifact:version``, byte size, SHA-1 (what
    Maven Central publishes beside it) and SHA-256 (what sparkube checks wherever the
    jar is fetched)."""

    coord: str
    size: int
    sha1: str
    sha256: str


@dataclass(frozen=True)
class SparkImage:
    """A Spark container image and the facts sparkube relies on about it."""

    ref: str
    spark_version: str
    scala_version: str
    scala_binary_version: str
    hadoop_version: str
    java_version: str
    python_version: str
    py4j_version: str
    aws_sdk_v2_version: str
    s3_jars: tuple[MavenJar, ...]
    spark_uid: int = 185
    spark_home: str = "/opt/spark"
    work_dir: str = "/opt/spark/work-dir"
    entrypoint: str = "/opt/entrypoint.sh"
    examples_jar: str = "/opt/spark/examples/jars/spark-examples.jar"

    @property
    def cache_key(self) -> str:
        """Folder name for this image in a local image cache (``apache-spark-<tag>``)."""
        return self.ref.replace("/", "-").replace(":", "-")

    @property
    def s3_jars_bytes(self) -> int:
        """Total size of :attr:`s3_jars` in bytes."""
        return sum(jar.size for jar in self.s3_jars)


def _split(coord: str) -> tuple[str, str, str]:
    parts = coord.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a group:artifact:version coordinate: {coord!r}")
    return parts[0], parts[1], parts[2]


def jar_file_name(coord: str) -> str:
    """``org.apache.hadoop:hadoop-aws:3.4.2`` -> ``hadoop-aws-3.4.2.jar``."""
    _, artifact, version = _split(coord)
    return f"{artifact}-{version}.jar"


def maven_path(coord: str) -> str:
    """Path of a jar inside a Maven-layout repository (``org/apache/hadoop/...jar``)."""
    group, artifact, version = _split(coord)
    return f"{group.replace('.', '/')}/{artifact}/{version}/{jar_file_name(coord)}"


def maven_url(coord: str, base: str = MAVEN_CENTRAL) -> str:
    """URL of a jar on a Maven-layout repository at ``base``."""
    return f"{base.rstrip('/')}/{maven_path(coord)}"


_SDK = "software.amazon.awssdk"
_V2 = "2.29.52"

SPARK_IMAGE = SparkImage(
    ref="apache/spark:4.1.2-scala2.13-java17-python3-ubuntu",
    spark_version="4.1.2",
    scala_version="2.13.17",
    scala_binary_version="2.13",
    hadoop_version="3.4.2",
    java_version="17",
    python_version="3.10",
    py4j_version="0.10.9.9",
    aws_sdk_v2_version=_V2,
    s3_jars=(
        MavenJar(
            "org.apache.hadoop:hadoop-aws:3.4.2",
            936997,
            "16f9de6da5c7862241d55a13d34843404d0cbb88",
            "d2d24e6b715b5656b9d238bf13b6682a07e2004dd36aad74a73aeb854319f4d9",
        ),
        MavenJar(
            "org.apache.spark:spark-hadoop-cloud_2.13:4.1.2",
            33248,
            "4aa61bdd33f4e2b1fe348840559e4a0d8567bc33",
            "672d7d872f434cb7fe1c90f7edcd19b1e8c67a335a578288426fbd4db5096915",
        ),
        MavenJar(
            "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.2.1",
            2299678,
            "44f8cf72ed9d5f948de0ba29e437a17d723bb7bb",
            "11029552e37408e41e689b20150f4b372e0b4f232de321ccafd0fcf443cdfb5a",
        ),
        MavenJar(
            "org.wildfly.openssl:wildfly-openssl:2.1.4.Final",
            443788,
            "6429181577ab16eca3815b11d925f0846d6c9051",
            "95decbc5d088b40e85f58d7726b8c8f4e3be6312a0f2660c2d714a23cee80279",
        ),
        MavenJar(
            "org.reactivestreams:reactive-streams:1.0.4",
            11640,
            "3864a1320d97d7b045f729a326e1e077661f31b7",
            "f75ca597789b3dac58f61857b9ac2e1034a68fa672db35055a8fb4509e325f28",
        ),
        MavenJar(
            "software.amazon.eventstream:eventstream:1.0.1",
            30193,
            "6ff8649dffc5190366ada897ba8525a836297784",
            "0c37d8e696117f02c302191b8110b0d0eb20fa412fce34c3a269ec73c16ce822",
        ),
        MavenJar(
            f"{_SDK}:annotations:{_V2}",
            13763,
            "9fa958ce528b57d90db01c5015daaf7bd373e57f",
            "8cd8bd8afd7eca5a367f69fd87427f6d9f3e7d359962122da24d71f1963f00cd",
        ),
        MavenJar(
            f"{_SDK}:apache-client:{_V2}",
            77005,
            "b7ce213c946d69ab1807b3f7ecac1ce29ed60485",
            "c96494be30ecac6f0ab7a35fdd91a4c77ca8a5daf62f3d9d84644ef0f0524dc6",
        ),
        MavenJar(
            f"{_SDK}:arns:{_V2}",
            15823,
            "879712423589b58434b8831b9b75304a16983178",
            "f5a4d1d9b4e4fc63c9bda49bcf1c59d23fd876b276c6b43aaca12969337303a6",
        ),
        MavenJar(
            f"{_SDK}:auth:{_V2}",
            234084,
            "76f9b22a99b0de0fd31447db22a5cba4ed4b172e",
            "4d8143b6198dc7a530c2ccdd813129c132b96736086c0d4fea85480b9bdbc5fe",
        ),
        MavenJar(
            f"{_SDK}:aws-core:{_V2}",
            180664,
            "dcfa86ac727b5d4e0abad1e8b025ac2febb6382e",
            "eb560c064fbaac7e2e7f4a77ac343d3083bea0d7f6e2c69ba022d3f3e859be90",
        ),
        MavenJar(
            f"{_SDK}:aws-query-protocol:{_V2}",
            69396,
            "0672d7a2df481414d02eedf3a9eff45fb87f1b8a",
            "1b117672963ee5059c45f2aadb110f191b578d108d8f08d7c7a59e6c0b098a8e",
        ),
        MavenJar(
            f"{_SDK}:aws-xml-protocol:{_V2}",
            102275,
            "e7290d4528affec022bd2f3739853f774a955ac2",
            "daf87b429373ad586d165003b5b1d4fe498c6472eb65ec9a9e2aa7d56f3917dd",
        ),
        MavenJar(
            f"{_SDK}:checksums-spi:{_V2}",
            8046,
            "537363296f035a935b7d3b50a5bef90014d38010",
            "21193b9b648843dcaff493f0dd80abab9ee6871b203b9218120554698d8f7b8a",
        ),
        MavenJar(
            f"{_SDK}:checksums:{_V2}",
            69428,
            "90631313060ff8ef1ab7745bb1e9740913bdcefc",
            "bca99ff25c9b917d6be03e5dce78ad5328e7dca485e96024fa8476e4192a800a",
        ),
        MavenJar(
            f"{_SDK}:crt-core:{_V2}",
            17776,
            "6a16e04be0e8bb8a1767e0644c631dadddfdd764",
            "4e1f33de21b688695fec91b977ddfa99e9d376edcbad06a62b0c138c60b37de4",
        ),
        MavenJar(
            f"{_SDK}:endpoints-spi:{_V2}",
            13171,
            "bd702a44ad440628af93afa1ec1d7cdc56baec67",
            "e54f246c668d70b55cffe0c8fad18d4465e74e22db75139918bd30610093d1e6",
        ),
        MavenJar(
            f"{_SDK}:http-auth-aws-eventstream:{_V2}",
            8707,
            "e8b723c48008bcac96e2cc34c7415bd8b581c601",
            "565a4aacce955c5ffaed551f6faaaa958e9e92b2f8514c8482f664edb2bab576",
        ),
        MavenJar(
            f"{_SDK}:http-auth-aws:{_V2}",
            158970,
            "1d0dbfa072bc46207066ffa498ad4ed65c52ac6d",
            "7ae124e81ac0c2860bb61fdde34a388dbe823fef8509dd46a6bec805ada90308",
        ),
        MavenJar(
            f"{_SDK}:http-auth-spi:{_V2}",
            45764,
            "4a64e68a88e3eef0b51819f742931f3607cdd996",
            "7a2168c5a7baa856d7ae9f9c4f7522d2db9f1361108c38f5b6ece66f249e6a2d",
        ),
        MavenJar(
            f"{_SDK}:http-auth:{_V2}",
            17475,
            "aa4ce3ff7bcd8dcf131a4f5445455b3eb4926dcf",
            "d8aa3bd376aaec7196396e65fe8755f1fdd169e51357f8128ecdc7d23a687450",
        ),
        MavenJar(
            f"{_SDK}:http-client-spi:{_V2}",
            87344,
            "a8da4f289736c702ec6664836761412e7e1e54a2",
            "8ea61ce3b527779fbfe119e0775c4b7cfdf274a979b1e50596a634685a5b6542",
        ),
        MavenJar(
            f"{_SDK}:identity-spi:{_V2}",
            30965,
            "0d18449651e8798398cadab6c4b5d8594bb0281c",
            "85104635abf9e5c044aaf7f8951b63efc2ef82051b5ee303571ee2e1fd8b46d0",
        ),
        MavenJar(
            f"{_SDK}:json-utils:{_V2}",
            33224,
            "d88c6c03061b9f3fcd17dc8456365dab67cc1597",
            "2652cdb3668311bcff6e643c8612b9fea266423ae1ce33743c84dd7f77904311",
        ),
        MavenJar(
            f"{_SDK}:metrics-spi:{_V2}",
            27264,
            "92c3797208d24b2b25ab9b6d1bbab624c3af1b9c",
            "1db2e3da338148ee40a716e1733c9a5b99e9e6daa4db3aa8bd7e718adafa2510",
        ),
        MavenJar(
            f"{_SDK}:netty-nio-client:{_V2}",
            287867,
            "20fa79ba82d3b290b12cd10ca49f0ff7608a6107",
            "07238668c9cf54531ee269fd6e2a1e2650fb75d6774d401f406c2a14f26af654",
        ),
        MavenJar(
            f"{_SDK}:profiles:{_V2}",
            49837,
            "59dd1368bff2d242d84515ec7ea8fe63bb472c4e",
            "fef84619d101838ba45f48d0caddb09a85d9ed8bf869095bd7d2064796856cf7",
        ),
        MavenJar(
            f"{_SDK}:protocol-core:{_V2}",
            44336,
            "1a0e4a114c0943142ca395000a949ee840890fea",
            "7b32e41a3743b422d2edec1670f60b4c1e512fcd5ab7a53fef20742d6b9104d1",
        ),
        MavenJar(
            f"{_SDK}:regions:{_V2}",
            904015,
            "0270b31c8695739d495452d380d036c72698e623",
            "5ee0e26277c679ffa70d83923b0d5f77a53066ecde8610f28be1856947d60eaf",
        ),
        MavenJar(
            f"{_SDK}:retries-spi:{_V2}",
            31489,
            "7e2c7ad44106799491de8cced5925b6473d62e4b",
            "a4218ea742fc9e07a620629d7a258bfd92b8ea3ef75f1b99193d0898ca3efe99",
        ),
        MavenJar(
            f"{_SDK}:retries:{_V2}",
            66310,
            "48cb57817dd88977ec71e63550673c5ce010a191",
            "ca3752ba31399721980c6398992921ff5aa164e084b4c14484333df58c76a353",
        ),
        MavenJar(
            f"{_SDK}:s3-transfer-manager:{_V2}",
            249191,
            "f1c0be0eb8b227ec537a30eafb4af90c86b82f94",
            "0c9e654637247187a7e2494eb7a8799477a772a7d554cd3ae787cd3e3bae3c55",
        ),
        MavenJar(
            f"{_SDK}:s3:{_V2}",
            3835574,
            "db65bc6177b0c4514be1f9775cb2094e29e85d3c",
            "abaedea7e68063e9c4ab090f80d14b9884c57b50953bfe6e5acaa23025609efa",
        ),
        MavenJar(
            f"{_SDK}:sdk-core:{_V2}",
            977550,
            "3f058b489fac3d091417339e02b165e72c637f61",
            "ea8e9856569f85075a8a806d0481c4bd848c98b24fd6d706fc0b5883fc4604dc",
        ),
        MavenJar(
            f"{_SDK}:sts:{_V2}",
            536436,
            "b9bbe3da301b5c0034d4c31e58bf0833ac3b9b85",
            "6495d0457f4e4c3724d8c9c5fe4f6f98c9530a22f92449c4cca5fd03622e4edb",
        ),
        MavenJar(
            f"{_SDK}:third-party-jackson-core:{_V2}",
            535001,
            "082ff600d837e83130502775a1555c45d7a3e2e1",
            "eaece3eb60beb8ec09d8a4f48d5bff4110010b03cc23688bdcf2af2eb075cac6",
        ),
        MavenJar(
            f"{_SDK}:utils:{_V2}",
            226880,
            "bde94a15cd79b0240bfa10230970e2f0e4c51eba",
            "f150a38f2fec14ced2de6459bfe804f647c88baa573b218646ef89b436a29d42",
        ),
    ),
)
"""The image sparkube deploys; see the module docstring for the source of each value."""
