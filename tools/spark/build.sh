#!/usr/bin/env bash
# Build the local stand-in for the Spark container image sparkube deploys (the table in
# sparkube/spark/image.py: SPARK_IMAGE) into a cache folder outside the repository:
#
#   ${SPARKUBE_IMAGE_CACHE:-$HOME/.cache/sparkube/images}/<SPARK_IMAGE.cache_key>/
#     layer/opt/spark/      Spark home like the image's /opt/spark, from PyPI pyspark
#     layer/opt/entrypoint.sh  our own test entrypoint with the image's contract
#     layer/etc/passwd, layer/etc/group  root, nobody and spark (185), as in the image
#     maven/                Maven-layout repository holding exactly SPARK_IMAGE.s3_jars
#     .stamp                identifies the inputs layer/ was built from
#     .maven-stamp          identifies the jar list maven/ holds
#
# tools/nodes/build.sh puts layer/ into the bed's Spark image (its /opt/spark, the
# entrypoint, the passwd entries), around Debian 12's Java 17 and python3; the local
# tests run its examples jar and read maven/. Pods run as uid 185: everything is
# world-readable, directories world-searchable, and there are no symlinks (real files
# only). layer/etc matters: Java takes user.home from the passwd entry of its uid, not
# from $HOME, and without an entry for 185 it is "?" (spark-submit then fails: "basedir
# must be absolute: ?/.ivy2.5.2/local"). The image has spark:x:185:185 with home
# /nonexistent.
#
# Idempotent: returns at once when the folder was built from the current image.py and
# RECIPE. Only SPARK_IMAGE's values count, not image.py's text; a change to its s3_jars
# alone refreshes maven/ in place (seconds) and leaves layer/, which running test pods
# overlay, as it is. Needs python3 with pip, a JDK 17+ (javac, jar), curl, and PyPI plus
# Maven Central (or the mirrors pip and SPARKUBE_MAVEN_BASE name).
#
# Environment:
#   SPARKUBE_IMAGE_CACHE   cache root (default ~/.cache/sparkube/images)
#   SPARKUBE_IMAGE_FORCE=1 rebuild even if the folder is current
#   SPARKUBE_MAVEN_BASE    repository the S3 jars are fetched from
#                          (default https://repo1.maven.org/maven2; ~/.m2 is used first)
#   SPARKUBE_PYTHON        python with pip (default python3)
#   JAVA_HOME              JDK for compiling the examples jar (default: javac on PATH)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image_py="$repo/sparkube/spark/image.py"

die() { echo "tools/spark/build.sh: error: $*" >&2; exit 1; }

# Bump RECIPE when a change to this script changes what it builds.
RECIPE=2
py="${SPARKUBE_PYTHON:-python3}"
maven_base="${SPARKUBE_MAVEN_BASE:-https://repo1.maven.org/maven2}"
cache_root="${SPARKUBE_IMAGE_CACHE:-$HOME/.cache/sparkube/images}"

[[ -f $image_py ]] || die "missing $image_py"
command -v "$py" >/dev/null 2>&1 || die "'$py' not found (set SPARKUBE_PYTHON)"

# --- the one table: read sparkube/spark/image.py without importing the package -------
table="$("$py" - "$image_py" <<'PY'
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("sparkube_spark_image", sys.argv[1])
assert spec is not None and spec.loader is not None
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
img = mod.SPARK_IMAGE
for key, value in [
    ("ref", img.ref), ("key", img.cache_key), ("spark", img.spark_version),
    ("scala", img.scala_binary_version), ("hadoop", img.hadoop_version),
    ("java", img.java_version), ("py4j", img.py4j_version), ("uid", img.spark_uid),
]:
    print("V", key, value)
for jar in img.s3_jars:
    print("J", jar.coord, mod.maven_path(jar.coord), jar.size, jar.sha1)
PY
)" || die "could not read SPARK_IMAGE from $image_py"

declare -A v=()
jar_coords=() jar_paths=() jar_sizes=() jar_sha1s=()
while read -r kind a b c d; do
  case $kind in
    V) v[$a]=$b ;;
    J) jar_coords+=("$a"); jar_paths+=("$b"); jar_sizes+=("$c"); jar_sha1s+=("$d") ;;
  esac
done <<<"$table"
for k in ref key spark scala hadoop java py4j uid; do
  [[ -n ${v[$k]:-} ]] || die "image.py gave no value for $k"
done
(( ${#jar_coords[@]} > 0 )) || die "image.py lists no S3 jars"

dest="$cache_root/${v[key]}"

# --- our own files, written into the layer ------------------------------------------
# The test entrypoint. Written for sparkube; it re-implements the contract of the
# image's /opt/entrypoint.sh and does not contain its code.
read -r -d '' ENTRYPOINT <<'SH' || true
#!/bin/bash
# sparkube's test entrypoint for the local stand-in of the apache/spark image.
#
# Re-implements (own code) the contract of the image's /opt/entrypoint.sh, which
# apache/spark-docker generates from entrypoint.sh.template; the 4.1.2 copy is
# 4.1.2/scala2.13-java17-ubuntu/entrypoint.sh in https://github.com/apache/spark-docker.
#
#   driver ARGS...  exec $SPARK_HOME/bin/spark-submit
#                     --conf spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS
#                     --conf spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS
#                     --deploy-mode client ARGS...
#   executor        exec $JAVA_HOME/bin/java $SPARK_JAVA_OPT_* -Xms$SPARK_EXECUTOR_MEMORY
#                     -Xmx$SPARK_EXECUTOR_MEMORY -cp CLASSPATH:$SPARK_DIST_CLASSPATH
#                     org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend
#                     --driver-url $SPARK_DRIVER_URL --executor-id $SPARK_EXECUTOR_ID
#                     --cores $SPARK_EXECUTOR_CORES --app-id $SPARK_APPLICATION_ID
#                     --hostname $SPARK_EXECUTOR_POD_IP
#                     --resourceProfileId $SPARK_RESOURCE_PROFILE_ID
#                     --podName $SPARK_EXECUTOR_POD_NAME
#   anything else   exec "$@"   (pass-through, e.g. /opt/spark/bin/spark-submit ...)
#
# CLASSPATH, in order: $SPARK_CONF_DIR if set (else $SPARK_HOME/conf), $HADOOP_CONF_DIR if
# set, $SPARK_CLASSPATH, $SPARK_HOME/jars/*, $SPARK_EXTRA_CLASSPATH, $PWD (SPARK-43540).
# SPARK_DIST_CLASSPATH defaults to `$HADOOP_HOME/bin/hadoop classpath` when HADOOP_HOME
# is set. SPARK_JAVA_OPT_<n> variables become executor JVM options. JAVA_HOME, if unset,
# is taken from the `java` on PATH. PYSPARK_PYTHON / PYSPARK_DRIVER_PYTHON are passed on.
# The image sets SPARK_HOME=/opt/spark, WORKDIR /opt/spark/work-dir, USER spark (185).
#
# Differences from the image's script: drivers and executors run under tini only if
# tini is installed; as root it switches to uid/gid 185 with gosu or setpriv; empty
# classpath elements are dropped; SPARK_JAVA_OPT_<n> are ordered by n. Like the image it
# fakes a passwd entry with libnss_wrapper when the uid has none (Java/Hadoop need a
# user name); without libnss_wrapper it only sets HADOOP_USER_NAME.
set -eo pipefail

export SPARK_HOME="${SPARK_HOME:-/opt/spark}"
if [[ -z ${JAVA_HOME:-} ]] && command -v java >/dev/null 2>&1; then
  JAVA_HOME="$(java -XshowSettings:properties -version 2>&1 >/dev/null \
    | sed -n 's/^ *java\.home = //p')"
fi

cp_add() {  # cp_add ELEMENT: append a non-empty element to classpath
  if [[ -n $1 ]]; then classpath="${classpath:+$classpath:}$1"; fi
}
classpath=""
if [[ -n ${SPARK_CONF_DIR+x} ]]; then cp_add "$SPARK_CONF_DIR"; else cp_add "$SPARK_HOME/conf"; fi
if [[ -n ${HADOOP_CONF_DIR+x} ]]; then cp_add "$HADOOP_CONF_DIR"; fi
cp_add "${SPARK_CLASSPATH:-}"
cp_add "$SPARK_HOME/jars/*"
cp_add "${SPARK_EXTRA_CLASSPATH:-}"
cp_add "$PWD"

if [[ -n ${HADOOP_HOME:-} && -z ${SPARK_DIST_CLASSPATH:-} ]]; then
  SPARK_DIST_CLASSPATH="$("$HADOOP_HOME/bin/hadoop" classpath)"
  export SPARK_DIST_CLASSPATH
fi
[[ -z ${PYSPARK_PYTHON+x} ]] || export PYSPARK_PYTHON
[[ -z ${PYSPARK_DRIVER_PYTHON+x} ]] || export PYSPARK_DRIVER_PYTHON

java_opts=()
while read -r name; do
  [[ -n $name ]] && java_opts+=("${!name}")
done < <(compgen -v SPARK_JAVA_OPT_ | sort -t_ -k4,4n)

fake_passwd_entry() {
  local uid gid lib
  uid="$(id -u)"; gid="$(id -g)"
  getent passwd "$uid" >/dev/null 2>&1 && return 0
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /lib/*/libnss_wrapper.so; do
    [[ -s $lib ]] || continue
    NSS_WRAPPER_PASSWD="$(mktemp)"; NSS_WRAPPER_GROUP="$(mktemp)"
    echo "spark:x:$uid:$gid:${SPARK_USER_NAME:-anonymous uid}:$SPARK_HOME:/bin/false" \
      >"$NSS_WRAPPER_PASSWD"
    echo "spark:x:$gid:" >"$NSS_WRAPPER_GROUP"
    export LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    return 0
  done
  export HADOOP_USER_NAME="${HADOOP_USER_NAME:-${SPARK_USER:-spark}}"
}

run() {  # run CMD...: exec CMD as the Spark user, under tini when there is one
  local prefix=()
  if [[ $(id -u) == 0 ]]; then
    if command -v gosu >/dev/null 2>&1; then prefix+=(gosu 185:185)
    elif command -v setpriv >/dev/null 2>&1; then
      prefix+=(setpriv --reuid=185 --regid=185 --clear-groups)
    fi
  fi
  if [[ -x /usr/bin/tini ]]; then prefix+=(/usr/bin/tini -s --); fi
  fake_passwd_entry
  exec "${prefix[@]}" "$@"
}

case "${1:-}" in
  driver)
    shift
    run "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:-}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS:-}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    run "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      -Xms"${SPARK_EXECUTOR_MEMORY:-}" -Xmx"${SPARK_EXECUTOR_MEMORY:-}" \
      -cp "$classpath:${SPARK_DIST_CLASSPATH:-}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL:-}" --executor-id "${SPARK_EXECUTOR_ID:-}" \
      --cores "${SPARK_EXECUTOR_CORES:-}" --app-id "${SPARK_APPLICATION_ID:-}" \
      --hostname "${SPARK_EXECUTOR_POD_IP:-}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  *)
    exec "$@"
    ;;
esac
SH

# Spark's examples jar is not published on Maven Central, so the layer gets a small
# stand-in with the class the tests run. Written for sparkube.
read -r -d '' SPARK_PI <<'JAVA' || true
package org.apache.spark.examples;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/** sparkube's stand-in for Spark's SparkPi: Monte Carlo estimate of pi. Arg: slices. */
public final class SparkPi {
  private SparkPi() {}

  public static void main(String[] args) {
    final int slices = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    final long perSlice = 100_000L;
    SparkSession spark = SparkSession.builder().appName("Spark Pi").getOrCreate();
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<Integer> seeds = new ArrayList<>();
    for (int i = 0; i < slices; i++) {
      seeds.add(i);
    }
    long inside = sc.parallelize(seeds, slices).map(seed -> {
      SplittableRandom random = new SplittableRandom(seed);
      long hits = 0;
      for (long i = 0; i < perSlice; i++) {
        double x = random.nextDouble(-1.0, 1.0);
        double y = random.nextDouble(-1.0, 1.0);
        if (x * x + y * y <= 1.0) {
          hits++;
        }
      }
      return hits;
    }).reduce(Long::sum);
    System.out.println("Pi is roughly " + 4.0 * inside / (perSlice * slices));
    spark.stop();
  }
}
JAVA

# The image's user (Dockerfile: groupadd/useradd --system --uid=185 -d /nonexistent).
PASSWD="root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
spark:x:${v[uid]}:${v[uid]}::/nonexistent:/bin/sh"
GROUP="root:x:0:
nogroup:x:65534:
spark:x:${v[uid]}:"

# The stamps identify the inputs: the layer's (the image's values, not image.py's text,
# and our own files) and the jar list's; a change to either rebuilds that part only.
stamp="$({ echo "recipe $RECIPE"; for k in ref key spark scala hadoop java py4j uid; do
    echo "$k ${v[$k]}"; done
  echo "$ENTRYPOINT"; echo "$SPARK_PI"; echo "$PASSWD"; echo "$GROUP"; } \
  | sha256sum | cut -c1-16)"
maven_stamp="$(for i in "${!jar_coords[@]}"; do
    echo "${jar_paths[$i]} ${jar_sizes[$i]} ${jar_sha1s[$i]}"; done | sha256sum | cut -c1-16)"

layer="$dest/layer"
layer_current() {
  [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]] || return 1
  local f
  for f in etc/passwd etc/group opt/entrypoint.sh opt/spark/bin/spark-submit opt/spark/examples/jars/spark-examples.jar \
           "opt/spark/python/lib/py4j-${v[py4j]}-src.zip" opt/spark/python/lib/pyspark.zip; do
    [[ -f "$layer/$f" ]] || return 1
  done
}
maven_current() {
  [[ -f "$dest/.maven-stamp" && "$(cat "$dest/.maven-stamp")" == "$maven_stamp" ]] || return 1
  local f
  for f in "${jar_paths[@]}"; do [[ -f "$dest/maven/$f" ]] || return 1; done
}
current() { layer_current && maven_current; }

# fetch_jars DIR: the S3 jars into the Maven-layout repository DIR, checked against
# image.py (from ~/.m2 when it holds the same bytes, else from $maven_base).
fetch_jars() {
  local i p out m2 got_sha1 got_size
  for i in "${!jar_coords[@]}"; do
    p="${jar_paths[$i]}"; out="$1/$p"
    mkdir -p "$(dirname "$out")"
    m2="$HOME/.m2/repository/$p"
    if [[ -f $m2 && "$(sha1sum <"$m2" | cut -c1-40)" == "${jar_sha1s[$i]}" ]]; then
      cp "$m2" "$out"
    else
      curl -fsSL --retry 3 -o "$out" "$maven_base/$p" || die "download failed: $maven_base/$p"
    fi
    got_sha1="$(sha1sum <"$out" | cut -c1-40)"; got_size="$(stat -c %s "$out")"
    [[ $got_sha1 == "${jar_sha1s[$i]}" && $got_size == "${jar_sizes[$i]}" ]] \
      || die "${jar_coords[$i]}: sha1 $got_sha1 size $got_size, image.py says ${jar_sha1s[$i]} ${jar_sizes[$i]}"
  done
  chmod -R a+rX "$1"
}

# refresh_maven: the layer is current, only the jar list changed. Update maven/ in place,
# one rename per jar, so tests serving it while this runs never see it missing.
refresh_maven() {
  local stage_m t0=$SECONDS p f
  command -v curl >/dev/null 2>&1 || die "'curl' not found"
  stage_m="$(mktemp -d "$cache_root/.maven.${v[key]}.XXXXXX")"
  trap 'rm -rf "$stage_m"' EXIT
  echo "Refreshing the S3 jars of ${v[ref]} (${#jar_coords[@]} jars; the Spark layer is current)"
  fetch_jars "$stage_m"
  for p in "${jar_paths[@]}"; do
    mkdir -p "$(dirname "$dest/maven/$p")"
    mv -f "$stage_m/$p" "$dest/maven/$p"
  done
  declare -A wanted=()
  for p in "${jar_paths[@]}"; do wanted[$p]=1; done
  while IFS= read -r -d '' f; do
    p="${f#"$dest/maven/"}"
    [[ -n ${wanted[$p]:-} ]] || rm -f "$f"
  done < <(find "$dest/maven" -type f -print0)
  find "$dest/maven" -mindepth 1 -type d -empty -delete
  chmod -R a+rX "$dest/maven"
  rm -rf "$stage_m"
  trap - EXIT
  echo "$maven_stamp" >"$dest/.maven-stamp"
  echo "  maven/  $(du -sb "$dest/maven" | awk '{printf "%.1f MB", $1 / 1e6}')  (${#jar_coords[@]} S3 jars) in $((SECONDS - t0)) s"
}

if [[ "${SPARKUBE_IMAGE_FORCE:-0}" != 1 ]] && current; then
  echo "Spark image layer ${v[ref]} present in $dest"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time per image (test runners may call us concurrently).
exec 9>"$cache_root/.${v[key]}.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [[ "${SPARKUBE_IMAGE_FORCE:-0}" != 1 ]] && current; then
    echo "Spark image layer ${v[ref]} present in $dest (built by another process)"
    exit 0
  fi
fi
if [[ "${SPARKUBE_IMAGE_FORCE:-0}" != 1 ]] && layer_current; then
  refresh_maven
  exit 0
fi

# --- preconditions -----------------------------------------------------------
"$py" -m pip --version >/dev/null 2>&1 || die "'$py -m pip' does not work: install pip"
command -v curl >/dev/null 2>&1 || die "'curl' not found"
if [[ -n ${JAVA_HOME:-} && -x "$JAVA_HOME/bin/javac" ]]; then
  jdk_bin="$JAVA_HOME/bin"
elif command -v javac >/dev/null 2>&1; then
  jdk_bin="$(dirname "$(readlink -f "$(command -v javac)")")"
else
  die "no javac (set JAVA_HOME to a JDK ${v[java]}+): needed to compile the examples jar"
fi
[[ -x "$jdk_bin/jar" ]] || die "no 'jar' tool next to $jdk_bin/javac"

stage="$(mktemp -d "$cache_root/.build.${v[key]}.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
umask 022

echo "Building the local Spark image layer for ${v[ref]}"
echo "  Spark ${v[spark]} (Scala ${v[scala]}, Hadoop ${v[hadoop]}) from PyPI pyspark, ${#jar_coords[@]} S3 jars"
echo "  into $dest  (cold: a few minutes, mostly downloading/building the 455 MB pyspark sdist)"
t_all=$SECONDS

# 1. Spark home from pip's pyspark of the same version.
t0=$SECONDS
echo "  [pyspark] pip install pyspark==${v[spark]}"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
  --target "$stage/pip" "pyspark==${v[spark]}" \
  || die "pip install pyspark==${v[spark]} failed"
pp="$stage/pip/pyspark"
grep -qE "^__version__(: str)? = ['\"]${v[spark]}['\"]" "$pp/version.py" \
  || die "pip installed a pyspark that is not ${v[spark]}"
[[ -f "$pp/jars/spark-core_${v[scala]}-${v[spark]}.jar" ]] \
  || die "pyspark has no jars/spark-core_${v[scala]}-${v[spark]}.jar"
[[ -f "$pp/jars/hadoop-client-api-${v[hadoop]}.jar" ]] \
  || die "pyspark's Hadoop is not ${v[hadoop]} (no jars/hadoop-client-api-${v[hadoop]}.jar)"
[[ -f "$pp/python/lib/py4j-${v[py4j]}-src.zip" ]] \
  || die "pyspark has no python/lib/py4j-${v[py4j]}-src.zip"
echo "  [pyspark] done in $((SECONDS - t0)) s"

sh="$stage/layer/opt/spark"
mkdir -p "$sh/python" "$sh/examples/jars" "$sh/examples/src/main" "$sh/work-dir"
for d in bin sbin jars data licenses; do mv "$pp/$d" "$sh/$d"; done
mv "$pp/python/lib" "$sh/python/lib"
mv "$pp/examples/src/main/python" "$sh/examples/src/main/python"
rm -rf "$pp/python" "$pp/examples"
find "$pp" -name __pycache__ -prune -exec rm -rf {} +
mv "$pp" "$sh/python/pyspark"
echo "Spark ${v[spark]} built for Hadoop ${v[hadoop]} (sparkube test layer from PyPI pyspark==${v[spark]})" \
  >"$sh/RELEASE"
chmod 0777 "$sh/work-dir"
if [[ $(id -u) == 0 ]]; then chown "${v[uid]}:${v[uid]}" "$sh/work-dir"; fi

# 2. Examples jar (stand-in, see above).
t0=$SECONDS
echo "  [examples] javac SparkPi"
mkdir -p "$stage/ex/src/org/apache/spark/examples" "$stage/ex/classes"
printf '%s\n' "$SPARK_PI" >"$stage/ex/src/org/apache/spark/examples/SparkPi.java"
"$jdk_bin/javac" --release "${v[java]}" -nowarn -cp "$sh/jars/*" -d "$stage/ex/classes" \
  "$stage/ex/src/org/apache/spark/examples/SparkPi.java" || die "javac SparkPi failed"
"$jdk_bin/jar" --create --file "$sh/examples/jars/spark-examples.jar" -C "$stage/ex/classes" .
echo "  [examples] done in $((SECONDS - t0)) s"

# 3. Entrypoint.
printf '%s\n' "$ENTRYPOINT" >"$stage/layer/opt/entrypoint.sh"
chmod 0755 "$stage/layer/opt/entrypoint.sh"
mkdir -p "$stage/layer/etc"
printf '%s\n' "$PASSWD" >"$stage/layer/etc/passwd"
printf '%s\n' "$GROUP" >"$stage/layer/etc/group"

# 4. The S3 jars, in a Maven-layout repository, checked against image.py.
t0=$SECONDS
echo "  [maven] ${#jar_coords[@]} S3 jars from ${HOME}/.m2 or $maven_base"
fetch_jars "$stage/maven"
echo "  [maven] done in $((SECONDS - t0)) s"

# 5. Modes: world-readable files, world-searchable directories, no symlinks.
chmod -R a+rX "$stage/layer" "$stage/maven"
links="$(find "$stage/layer" "$stage/maven" -type l | head -5)"
[[ -z $links ]] || die "symlinks in the layer: $links"

rm -rf "$stage/pip" "$stage/ex"
echo "$stamp" >"$stage/.stamp"
echo "$maven_stamp" >"$stage/.maven-stamp"
chmod 0755 "$stage"
rm -rf "$dest.old"
if [[ -e $dest ]]; then mv "$dest" "$dest.old"; fi
mv "$stage" "$dest"
rm -rf "$dest.old"
trap - EXIT

total=$((SECONDS - t_all))
s3_bytes="$(du -sb "$dest/maven" | cut -f1)"
echo "Built in ${total} s ($((total / 60)) min $((total % 60)) s): $dest"
echo "  layer/opt/spark  $(du -sh "$layer/opt/spark" | cut -f1)  ($(find "$layer/opt/spark/jars" -name '*.jar' | wc -l) jars)"
echo "  layer/opt/entrypoint.sh, layer/etc/{passwd,group}"
echo "  maven/           $(awk -v b="$s3_bytes" 'BEGIN {printf "%.1f MB", b / 1e6}')  (${#jar_coords[@]} S3 jars)"
