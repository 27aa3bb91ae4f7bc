#!/usr/bin/env bash
# Installs what the Java SDK end-to-end suite (tests/sdk/java) needs: a JDK 17 and Maven (from
# Debian's packages when missing) and every Maven artifact of the suite — the pinned Temporal
# Java SDK, JUnit 5 and the build and Surefire plugins with their provider — in Maven's default
# local repository (~/.m2/repository, or whatever the user's settings.xml names), so that the
# suite then runs offline:
#
#   scripts/install-java-deps.sh
#   cd tests/sdk/java && mvn -B -q -o test                  # against sundial (target/release/sundial)
#   SUNDIAL_TEST_TARGET=temporal mvn -B -q -o test          # against Temporal's dev server
#
# The temporal target also needs the temporal CLI from scripts/install-test-deps.sh.
# Idempotent: a second run downloads nothing and takes a few seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
if ! command -v javac >/dev/null 2>&1; then need_apt+=(openjdk-17-jdk-headless); fi
if ! command -v mvn >/dev/null 2>&1; then need_apt+=(maven); fi
if [ ${#need_apt[@]} -ne 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install ${need_apt[*]} (JDK 17+ and Maven 3.8+) first" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

cd "$ROOT/tests/sdk/java"
# Running the lifecycle (without tests) resolves what dependency:go-offline misses: the plugins'
# own dependencies, including Surefire's JUnit Platform provider.
mvn -B -q clean test -Dtest=ResolveOnlyNoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
# Check that the offline run the suite uses really works.
mvn -B -q -o test-compile
echo "java test dependencies installed"
