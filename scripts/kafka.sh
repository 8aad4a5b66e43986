#!/usr/bin/env bash
# Kept for scripts and habits that call scripts/kafka.sh: the local broker tooling lives in infra/kafka/.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../infra/kafka/kafka.sh" "$@"
