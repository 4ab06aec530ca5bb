#!/bin/sh
# Stands in for tests this build cannot run (tests/Makefile.am's LOG_COMPILER
# when a test tool is missing): says why, and exits 77, automake's SKIP.
# usage: skip.sh REASON TEST
echo "SKIP: ${2##*/}: $1"
exit 77
