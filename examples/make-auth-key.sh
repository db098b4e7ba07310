#!/bin/sh
# make-auth-key.sh FILE - write a 64 KiB random bootstrap authentication key
# (mode 0600) for one QKD link. Both ends of the link need the same file:
# copy it to the peer over a channel you trust (in person, not by e-mail),
# and never give the same key to two links. An existing FILE is left alone:
# replacing one end's key would leave the two ends unable to authenticate.
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 FILE" >&2
	exit 2
fi
if [ -e "$1" ]; then
	echo "$0: $1 exists; remove it first to make a new key" >&2
	exit 1
fi
umask 077
set -C			# noclobber: never write into a file created meanwhile
head -c 65536 /dev/urandom > "$1"
chmod 0600 "$1"
