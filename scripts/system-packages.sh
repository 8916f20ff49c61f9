#!/usr/bin/env bash
# The Debian packages lrsched uses: FashionMNIST for machines without internet, and the
# PostgreSQL server the multi-worker tuning test starts on 127.0.0.1. Idempotent and quick.
set -euo pipefail

need=()
ls /usr/share/datasets/fashion-mnist/*-ubyte.gz >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "hint: sudo apt-get install ${need[*]}" >&2
  echo "      (dataset-fashion-mnist: FashionMNIST without internet; otherwise the download stage"
  echo "       uses the official mirror. postgresql: only the multi-worker tuning test needs it.)" >&2
fi
